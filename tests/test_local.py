"""honcho runs the same Procfile on the host, with .env, as `make local` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from app.migrations.history import PROJECT_ROOT
from devtools.docker import free_port
from devtools.http import http_status, wait_for
from devtools.postgres import scratch_database
from tests.support.databases import upgrade, version
from tests.support.history import SEED, after, head

HONCHO = str(Path(sys.executable).parent / "honcho")


def host_env() -> dict[str, str]:
    """Return the environment without the variables .env is meant to provide."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY", "PORT", "DYNO"}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def write_env(path: Path, url: str, port: int) -> Path:
    path.write_text(f"DATABASE_URL={url}\nSECRET_KEY=local-secret\nPORT={port}\nWEB_CONCURRENCY=1\n")
    return path


class WebProcess:
    """A web process started on the host; its output is read as it comes, ``returncode`` set once it stopped."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.command, self.env, self.port = command, env, port
        self.lines: list[str] = []
        self.returncode: int | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for_line(self, text: str, timeout: float = 30) -> str:
        """Return the first line of output containing ``text``, waiting for it."""
        wait_for(lambda: any(text in line for line in self.lines), timeout)
        return next(line for line in self.lines if text in line)

    def __enter__(self) -> WebProcess:
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")))
        self.reader.start()
        wait_for(lambda: http_status(self.url("/healthz")) == 200, 30)
        return self

    def __exit__(self, *exc_info) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.returncode = self.proc.wait(timeout=40)
        self.reader.join(10)
        self.proc.stdout.close()


def test_honcho_runs_release_then_serves_the_web_type(server_url, tmp_path):
    with scratch_database(server_url, "honcho") as url:
        port = free_port()
        env_file = write_env(tmp_path / ".env", url, port)
        common = ["-f", str(PROJECT_ROOT / "Procfile"), "-e", str(env_file), "-d", str(PROJECT_ROOT)]

        release = subprocess.run(
            [HONCHO, *common, "run", "bin/proc", "release"], env=host_env(), capture_output=True, text=True, timeout=120
        )
        assert release.returncode == 0, release.stdout + release.stderr
        assert f"database is at {head()}" in release.stdout

        with WebProcess([HONCHO, *common, "start", "web"], host_env(), port) as web:
            assert http_status(web.url("/readyz")) == 200
            assert http_status(web.url("/no-such-page")) == 404
        assert f"Listening at: http://0.0.0.0:{port}" in web.output
        assert 'method=GET path="/readyz" status=200' in web.output


def test_web_start_up_log_names_the_pending_revisions(server_url):
    with scratch_database(server_url, "behind") as url:
        upgrade(url, SEED[1][0])  # before zoomlevel and favorites
        port = free_port()
        env = {**host_env(), "DATABASE_URL": url, "SECRET_KEY": "s", "PORT": str(port), "WEB_CONCURRENCY": "1"}
        with WebProcess([str(PROJECT_ROOT / "bin" / "proc"), "web"], env, port) as web:
            assert http_status(web.url("/readyz")) == 503
            line = web.wait_for_line("database schema is behind")  # logged by the first worker, off the serving path
    assert "[WARNING]" in line
    pending = after(SEED[1][0])
    assert f"{len(pending)} pending: " + ", ".join(f"{rev} ({message})" for rev, message in pending) in line
    assert web.returncode == 0


def test_starting_every_type_at_once_runs_no_one_off_and_says_how_to_run_them(server_url, tmp_path):
    """`honcho start` or `heroku local` with no name starts every type: downgrade must not drop a table."""
    with scratch_database(server_url, "every-type") as url:
        upgrade(url)
        env_file = write_env(tmp_path / ".env", url, free_port())
        common = ["-f", str(PROJECT_ROOT / "Procfile"), "-e", str(env_file), "-d", str(PROJECT_ROOT)]
        started = subprocess.run(
            [HONCHO, *common, "start"], env=host_env(), capture_output=True, text=True, timeout=120
        )
        # Each manager names its processes its own way: honcho, node-foreman (heroku local), foreman.
        named = {"release": "HONCHO_PROCESS_NAME", "migrate": "FOREMAN_WORKER_NAME", "upgrade": "PS"}
        refused = {
            one_off: subprocess.run(
                [str(PROJECT_ROOT / "bin" / "proc"), one_off],
                capture_output=True,
                text=True,
                env={**host_env(), "DATABASE_URL": url, named.get(one_off, "HONCHO_PROCESS_NAME"): f"{one_off}.1"},
            )
            for one_off in ("release", "migrate", "upgrade", "downgrade")
        }
        assert version(url) == head(), "no one-off ran: the database is where it was"
    # honcho stops every process once the first refusal ends: the others may be stopped before they say why.
    said = started.stdout + started.stderr
    assert started.returncode != 0 and "bin/oneoff: " in said, said
    for one_off, result in refused.items():
        assert result.returncode == 1, (one_off, result.stderr)
        if one_off == "release":
            assert "bin/oneoff: release runs before web, not beside it: make local runs it" in result.stderr
        else:
            assert f"bin/oneoff: {one_off} is a one-off, run by name, not started beside web: make {one_off}, " \
                f"honcho run bin/proc {one_off} or heroku local:run bin/proc {one_off}" in result.stderr  # fmt: skip
    inherited = subprocess.run([str(PROJECT_ROOT / "bin" / "oneoff"), "true"], env={**host_env(), "PS": "web.1"})
    assert inherited.returncode == 0, "a command run from make local's web is no one-off the manager started"
