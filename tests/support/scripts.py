"""bin/'s scripts without a .py, loaded as modules for a test to call their functions."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType

from app.migrations.history import PROJECT_ROOT


def bin_script(name: str) -> ModuleType:
    """Return bin/``name`` loaded as a module (once per run), as it imports the modules beside it."""
    if name not in sys.modules:
        loader = importlib.machinery.SourceFileLoader(name, str(PROJECT_ROOT / "bin" / name))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
        sys.modules[name] = module  # its dataclasses look their module up
        loader.exec_module(module)
    return sys.modules[name]
