"""Docker in the suite: skip without an engine, one app image per run shared by every worker."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from devtools.docker import build_app_image, docker
from tests.support.postgres import RUN_ID

APP_IMAGE = "flask-heroku-parity:test"
# The virtualenv running the suite. A copy of the project has no .venv: make targets
# run in one get VENV= this, instead of creating and installing a venv per copy.
SUITE_VENV = Path(sys.executable).parent.parent


def require_docker() -> None:
    """Skip unless a Docker engine answers (CI always has one)."""
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.skip("needs a running Docker engine")


def container_logs(name: str) -> str:
    """Return what a container has said so far, on both its streams."""
    result = docker("logs", name)
    return result.stdout + result.stderr


def container_running(name: str) -> bool:
    return docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"


def container_exit_code(name: str) -> int:
    return int(docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout)


def remove_run_image() -> None:
    """Remove this run's shared app image (the tag shared_app_image built, if it did)."""
    if shutil.which("docker"):
        docker("image", "rm", f"{APP_IMAGE}-{os.environ.get(RUN_ID, 'none')}", check=False)


def shared_app_image(run_dir: Path) -> str:
    """Return this run's app image, built once for every worker (removed at the end of the run)."""
    tag = f"{APP_IMAGE}-{os.environ.get(RUN_ID, 'none')}"
    with FileLock(run_dir / "image.lock"):
        built = run_dir / "image.built"
        if not built.exists():
            build_app_image(tag)
            built.write_text(tag)
    return tag
