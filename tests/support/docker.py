"""Run real Docker commands from tests: build the app image, start containers, wait on HTTP."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock

from app.schema import PROJECT_ROOT
from tests.support.postgres import RUN_ID, run_labels

APP_IMAGE = "flask-heroku-parity:test"
# The virtualenv running the suite. A copy of the project has no .venv: make targets
# run in one get VENV= this, instead of creating and installing a venv per copy.
SUITE_VENV = Path(sys.executable).parent.parent


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``docker args`` and return the finished process (raising on failure when ``check``)."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def require_docker() -> None:
    """Skip unless a Docker engine answers (CI always has one)."""
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("needs a running Docker engine")


def build_app_image(tag: str = APP_IMAGE, context: Path = PROJECT_ROOT) -> str:
    """Build the project's image as ``tag`` the way `make up` does (Compose, BuildKit); PYTHON_IMAGE picks the base."""
    env = {**os.environ, "APP_IMAGE": tag, "SECRET_KEY": "build-only", "COMPOSE_PROJECT_NAME": "build"}
    result = subprocess.run(
        ["docker", "compose", "--progress", "quiet", "build", "web"],
        cwd=context, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"building {tag} failed:\n{result.stdout}\n{result.stderr}")
    return tag


def shared_app_image(run_dir: Path) -> str:
    """Return this run's app image, built once for every worker (removed at the end of the run)."""
    tag = f"{APP_IMAGE}-{os.environ.get(RUN_ID, 'none')}"
    with FileLock(run_dir / "image.lock"):
        built = run_dir / "image.built"
        if not built.exists():
            build_app_image(tag)
            built.write_text(tag)
    return tag


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


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
def postgres_on(net: str, image: str, *extra: str, command: tuple[str, ...] = ()) -> Iterator[str]:
    """Start Postgres on ``net``; yield its container name once it answers over TCP."""
    name = unique("tpg")
    labels = [f"--label={key}={value}" for key, value in run_labels().items()]
    docker(
        "run", "-d", "--name", name, "--network", net, *labels,
        "-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=secret", "-e", "POSTGRES_DB=app",
        *extra, image, *command,
    )  # fmt: skip
    try:
        wait_for(lambda: docker("exec", name, "pg_isready", "-q", "-h", "127.0.0.1", check=False).returncode == 0, 60)
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)


def published_port(container: str, port: int) -> int:
    """Return the 127.0.0.1 port Docker published for ``port`` of ``container``."""
    mapping = docker("port", container, f"{port}/tcp").stdout.split()[0]
    return int(mapping.rsplit(":", 1)[1])


def poll(predicate, timeout: float, interval: float = 0.05):
    """Return the first truthy value of ``predicate()``, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def wait_for(predicate, timeout: float, interval: float = 0.1) -> float:
    """Wait until ``predicate()`` is true; return the seconds it took, or fail after ``timeout``."""
    started = time.monotonic()
    if not poll(predicate, timeout, interval):
        raise AssertionError(f"condition not met within {timeout} s")
    return time.monotonic() - started


def http_status(url: str) -> int | None:
    """Return the HTTP status of GET ``url``, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def http_call(url: str, method: str = "GET", body=None, token=None) -> tuple[int, dict[str, str], dict]:
    """Send a JSON request; return (status, headers with lower-case names, decoded body)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answered, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, answered, raw = exc.code, dict(exc.headers), exc.read()
    answered = {name.lower(): value for name, value in answered.items()}  # names are case-insensitive
    try:
        decoded = json.loads(raw or b"{}")
    except ValueError:  # the router's own error pages are HTML
        decoded = {"body": raw.decode(errors="replace")}
    return status, answered, decoded


def http_raw(port: int | str, method: str = "GET", path: str = "/", headers=(), body: bytes | None = None,
             tls: bool = False) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """Send exactly the given headers (repeats allowed) to 127.0.0.1:port; return (status, headers, body)."""
    if tls:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", int(port), timeout=60, context=ssl._create_unverified_context()
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def http_json(url: str, method: str = "GET", body=None, token=None, expect: int | None = None):
    """Send a JSON request; return (status, decoded body), failing if ``expect`` is given and not met."""
    status, _, decoded = http_call(url, method, body, token)
    if expect is not None and status != expect:
        raise AssertionError(f"{method} {url}: expected {expect}, got {status}: {decoded}")
    return status, decoded


def copy_project(destination: Path) -> Path:
    """Copy the project's files (not .git, .venv or caches) to ``destination``."""
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".env", ".run")
    shutil.copytree(PROJECT_ROOT, destination, ignore=ignore)
    return destination
