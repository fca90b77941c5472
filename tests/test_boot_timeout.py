"""Heroku's boot timeout (R10), kept by a Compose dyno's gunicorn: real gunicorn, an app slow to import.

Each test runs gunicorn.conf.py beside a small app package of its own whose
import takes the time it is told, so it runs as the project's app does
(live reload counts the package as the project's code) without Postgres.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.migrations.history import PROJECT_ROOT
from devtools.docker import free_port
from devtools.http import http_status, poll

SLOW_APP = """\
import os
import time

time.sleep(float(os.environ["IMPORT_SECONDS"]))


def create_app():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"loaded"]

    return app
"""

# The dyno's timer reads its launch time and the clock from /proc, both in
# hundredths of a second, so it may fire up to one tick before the limit.
PROC_CLOCK_TICK = 0.01

R10 = "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {} seconds of launch"


@dataclass
class Web:
    process: subprocess.Popen[str]
    url: str
    launched: float  # on time.monotonic()'s clock
    said: str = ""  # its output, once it has ended


@contextmanager
def web(tmp_path: Path, *options: str, **env: str) -> Iterator[Web]:
    """Start gunicorn as a dyno's web starts, with the slow app; stop it at the end and keep what it said."""
    shutil.copy(PROJECT_ROOT / "gunicorn.conf.py", tmp_path)
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "__init__.py").write_text(SLOW_APP)
    port, launched = free_port(), time.monotonic()
    settings = {"PORT": str(port), "WEB_CONCURRENCY": "1", "LOCAL_STACK": "1", "WEB_RELOAD": "0", **env}
    base = {k: v for k, v in os.environ.items() if k not in ("LOCAL_STACK", "WEB_DEBUG", "DYNO")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *options, "app:create_app()"],
        cwd=tmp_path,
        env={**base, **settings, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Web(process, f"http://127.0.0.1:{port}/", launched)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
        running.said = process.communicate(timeout=30)[0]


def served(url: str, seconds: float) -> bool:
    """Return whether ``url`` answers 200 within ``seconds``."""
    return bool(poll(lambda: http_status(url) == 200, seconds))


@pytest.mark.parametrize("reload", ["0", "1"])
def test_a_dyno_that_has_not_bound_port_at_the_boot_timeout_stops_with_herokus_r10(tmp_path, reload):
    """With preload_app (as on Heroku) gunicorn binds after the import; under live reload it binds first, and
    the boot lasts until the master has imported the app: a slow import is stopped the same way."""
    with web(tmp_path, WEB_RELOAD=reload, WEB_BOOT_TIMEOUT="2", IMPORT_SECONDS="30") as dyno:
        status = dyno.process.wait(timeout=20)
        took = time.monotonic() - dyno.launched
    assert status == 137, dyno.said
    [line] = [line for line in dyno.said.splitlines() if line.startswith("Error R10")]
    assert line.startswith(f"{R10.format(2)}: Heroku stops such a dyno with SIGKILL; load less when the app is")
    assert "WEB_BOOT_TIMEOUT" in line, "the way out here"
    assert 2 - PROC_CLOCK_TICK <= took < 10, f"stopped after {took:.3f} s"


def test_a_web_that_binds_another_port_than_port_stops_with_herokus_r10_too(tmp_path):
    """A --bind on the Procfile's line wins over gunicorn.conf.py's: web boots and serves, but not on $PORT,
    where Heroku's router would look for it."""
    elsewhere = free_port()
    with web(tmp_path, "--bind", f"127.0.0.1:{elsewhere}", WEB_BOOT_TIMEOUT="6", IMPORT_SECONDS="0") as dyno:
        assert served(f"http://127.0.0.1:{elsewhere}/", 15), "it booted, on its own port"
        status = dyno.process.wait(timeout=20)
    assert status == 137, dyno.said
    [line] = [line for line in dyno.said.splitlines() if line.startswith("Error R10")]
    assert line.startswith(f"{R10.format(6)}: Heroku stops such a dyno with SIGKILL; web is up, but not on $PORT: ")


@pytest.mark.parametrize("reload", ["0", "1"])
def test_an_app_that_loads_within_the_boot_timeout_serves_and_stays(tmp_path, reload):
    """Past the boot the dyno serves on (under live reload, once the master and then its worker have
    imported the app)."""
    with web(tmp_path, WEB_RELOAD=reload, WEB_BOOT_TIMEOUT="10", IMPORT_SECONDS="2") as dyno:
        assert served(dyno.url, 15), "served"
        time.sleep(max(0.0, dyno.launched + 10.5 - time.monotonic()))
        assert dyno.process.poll() is None and served(dyno.url, 2), "still serving past the boot timeout"
    assert "Error R10" not in dyno.said, dyno.said


def test_heroku_keeps_its_own_boot_timeout(tmp_path):
    """Without LOCAL_STACK (a dyno on Heroku, or make local) nothing here stops a slow boot."""
    with web(tmp_path, LOCAL_STACK="", WEB_BOOT_TIMEOUT="1", IMPORT_SECONDS="2") as dyno:
        assert served(dyno.url, 15)
    assert "Error R10" not in dyno.said
