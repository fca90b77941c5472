"""Facts about the project that tools read instead of repeating: where it is, its versions, where a dyno listens.

``.python-version`` and ``.postgres-version`` are the one home of the two
versions; the Dockerfile's default, Compose, heroku.yml and CI either read
them or are checked against them by tests/test_parity.py.
"""

from __future__ import annotations

import os
import re

from app.migrations.history import PROJECT_ROOT

ROOT = PROJECT_ROOT
PYTHON_VERSION = (ROOT / ".python-version").read_text().strip()
POSTGRES_MAJOR = (ROOT / ".postgres-version").read_text().strip()
# The official images a user with internet gets; CI points the variables at local stand-ins.
DEFAULT_PYTHON_IMAGE = f"python:{PYTHON_VERSION}-slim-bookworm"
DEFAULT_POSTGRES_IMAGE = f"postgres:{POSTGRES_MAJOR}"


def dyno_port() -> int:
    """Return each Compose dyno's $PORT inside its container, as docker-compose.yml sets it."""
    written = re.search(r'^ *PORT: &dyno-port "(\d+)"$', (ROOT / "docker-compose.yml").read_text(), re.M)
    if written is None:
        raise LookupError('docker-compose.yml sets no PORT: &dyno-port "N"')
    return int(written[1])


DYNO_PORT = dyno_port()


def python_image() -> str:
    """Return the app image's base, from PYTHON_IMAGE (as Compose passes it to the Dockerfile)."""
    return os.environ.get("PYTHON_IMAGE") or DEFAULT_PYTHON_IMAGE


def postgres_image() -> str:
    """Return the Postgres image to start, from POSTGRES_IMAGE."""
    return os.environ.get("POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE


def newer_postgres_image() -> str:
    """Return an image of a newer major than postgres_image()'s, from NEWER_POSTGRES_IMAGE (a source to refuse)."""
    return os.environ.get("NEWER_POSTGRES_IMAGE") or f"postgres:{int(POSTGRES_MAJOR) + 1}"
