"""Drive a real Docker engine: build the app image, run containers, copy the project for a private stack."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.project import ROOT


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``docker args`` and return the finished process (raising on failure when ``check``)."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def wait_for_postgres(container: str, timeout: int = 60) -> None:
    """Wait until the Postgres in ``container`` answers over TCP, as the app will connect.

    One `docker exec` loops pg_isready inside the container: an exec per try
    cost about 40 ms of CPU in dockerd, containerd and runc, ten times a
    second for every server a test starts. TCP, because the image runs a
    socket-only server while it initialises.
    """
    tries = timeout * 10
    script = f"i=0; until pg_isready -q -h 127.0.0.1; do i=$((i+1)); [ $i -lt {tries} ] || exit 1; sleep 0.1; done"
    result = docker("exec", container, "sh", "-c", script, check=False, timeout=timeout + 30)
    if result.returncode != 0:
        logs = docker("logs", "--tail", "20", container, check=False)
        raise AssertionError(f"Postgres in {container} did not answer within {timeout} s:\n{logs.stdout}{logs.stderr}")


def build_app_image(tag: str, context: Path = ROOT) -> str:
    """Build the project's image as ``tag`` the way `make up` does (Compose, BuildKit); PYTHON_IMAGE picks the base."""
    env = {**os.environ, "APP_IMAGE": tag, "SECRET_KEY": "build-only", "COMPOSE_PROJECT_NAME": "build"}
    result = subprocess.run(
        ["docker", "compose", "--progress", "quiet", "build", "web"],
        cwd=context, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"building {tag} failed:\n{result.stdout}\n{result.stderr}")
    return tag


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def label_args(labels: dict[str, str] | None) -> list[str]:
    """Return ``docker run`` (or ``create``) options that put ``labels`` on the container."""
    return [f"--label={key}={value}" for key, value in (labels or {}).items()]


@contextmanager
def network() -> Iterator[str]:
    """Yield the name of a fresh user-defined bridge network."""
    name = unique("tnet")
    docker("network", "create", name)
    try:
        yield name
    finally:
        docker("network", "rm", name, check=False)


@contextmanager
def postgres_on(
    net: str, image: str, *extra: str, command: tuple[str, ...] = (), labels: dict[str, str] | None = None
) -> Iterator[str]:
    """Start Postgres on ``net``; yield its container name once it answers over TCP."""
    name = unique("tpg")
    docker(
        "run", "-d", "--name", name, "--network", net, *label_args(labels),
        "-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=secret", "-e", "POSTGRES_DB=app",
        *extra, image, *command,
    )  # fmt: skip
    try:
        wait_for_postgres(name)
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)


def published_port(container: str, port: int) -> int:
    """Return the 127.0.0.1 port Docker published for ``port`` of ``container``."""
    mapping = docker("port", container, f"{port}/tcp").stdout.split()[0]
    return int(mapping.rsplit(":", 1)[1])


def copy_project(destination: Path) -> Path:
    """Copy the project's files (not .git, .venv or caches but mypy's) to ``destination``.

    mypy's cache comes along: it checks each file's hash, so a copy's edits
    are checked afresh, and `make check` in a copy takes 0.2 s instead of 4.
    """
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".env", ".run"
    )
    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination
