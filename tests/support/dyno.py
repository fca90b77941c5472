"""bin/ as a dyno has it, for tests that run bin/proc outside the image."""

from __future__ import annotations

import shutil
from pathlib import Path

import dockerignore
from app.migrations.history import PROJECT_ROOT


def dyno_bin(directory: Path) -> Path:
    """Copy the bin/ files .dockerignore lets into the image to ``directory``/bin; return bin/proc there."""
    rules = dockerignore.parse((PROJECT_ROOT / ".dockerignore").read_text())
    target = directory / "bin"
    target.mkdir(exist_ok=True)
    for path in sorted((PROJECT_ROOT / "bin").iterdir()):
        if path.is_file() and not dockerignore.left_out(f"bin/{path.name}", rules):
            shutil.copy(path, target / path.name)
    return target / "proc"
