"""honcho runs the same Procfile on the host, with .env, as `make local` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from app.schema import PROJECT_ROOT, head_revision
from tests.support.databases import scratch_database
from tests.support.docker import free_port, http_status, wait_for

HONCHO = str(Path(sys.executable).parent / "honcho")


def host_env() -> dict[str, str]:
    """Return the environment without the variables .env is meant to provide."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY", "PORT", "DYNO"}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def write_env(path: Path, url: str, port: int) -> Path:
    path.write_text(f"DATABASE_URL={url}\nSECRET_KEY=local-secret\nPORT={port}\nWEB_CONCURRENCY=1\n")
    return path


def test_honcho_runs_release_then_serves_the_web_type(server_url, tmp_path):
    with scratch_database(server_url, "honcho") as url:
        port = free_port()
        env_file = write_env(tmp_path / ".env", url, port)
        common = ["-f", str(PROJECT_ROOT / "Procfile"), "-e", str(env_file), "-d", str(PROJECT_ROOT)]

        release = subprocess.run(
            [HONCHO, *common, "run", "bin/proc", "release"], env=host_env(), capture_output=True, text=True, timeout=120
        )
        assert release.returncode == 0, release.stdout + release.stderr
        assert f"database is at {head_revision()}" in release.stdout

        command = [HONCHO, *common, "start", "web"]
        web = subprocess.Popen(command, env=host_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 30)
            assert http_status(f"http://127.0.0.1:{port}/no-such-page") == 404
        finally:
            web.send_signal(signal.SIGTERM)
            output, _ = web.communicate(timeout=40)
        assert f"Listening at: http://0.0.0.0:{port}" in output
        assert "GET /readyz HTTP/1.1" in output
