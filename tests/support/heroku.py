"""A stand-in for the Heroku CLI: a `heroku` script first on PATH, or a PATH without any `heroku`."""

from __future__ import annotations

import os
from pathlib import Path


def path_without_heroku() -> str:
    """Return PATH minus every directory holding a `heroku` (a developer's real CLI included)."""
    dirs = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "heroku").exists()]
    return os.pathsep.join(dirs)


def stub_heroku(directory: Path, script: str) -> str:
    """Write ``script`` as ``directory/heroku``; return a PATH that finds it first (and no other)."""
    directory.mkdir(parents=True, exist_ok=True)
    stub = directory / "heroku"
    stub.write_text(script)
    stub.chmod(0o755)
    return f"{directory}{os.pathsep}{path_without_heroku()}"
