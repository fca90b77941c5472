"""A stand-in for the Heroku CLI: a `heroku` script first on PATH, or a PATH without any `heroku`."""

from __future__ import annotations

import os
from pathlib import Path


def path_without_heroku() -> str:
    """Return PATH minus every directory holding a `heroku` (a developer's real CLI included)."""
    dirs = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "heroku").exists()]
    return os.pathsep.join(dirs)


# The real CLI (oclif) reads its first word as the command: a flag there is refused, as here.
COMMAND_FIRST = """#!/bin/sh
case "$1" in -*) echo "Error: $1 is not a heroku command." >&2; exit 127;; esac
exec "$0.answers" "$@"
"""


def stub_heroku(directory: Path, script: str) -> str:
    """Write ``script`` as what ``directory/heroku`` answers once given a command first;
    return a PATH that finds it first (and no other)."""
    directory.mkdir(parents=True, exist_ok=True)
    stub, answers = directory / "heroku", directory / "heroku.answers"
    stub.write_text(COMMAND_FIRST)
    answers.write_text(script)
    for made in (stub, answers):
        made.chmod(0o755)
    return f"{directory}{os.pathsep}{path_without_heroku()}"
