"""The throwaway Postgres server the suite runs against: one per pytest run, shared by every xdist worker."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

from devtools.postgres import start_postgres

# Every container a run starts carries this label, so the run can remove them all at the end.
RUN_LABEL = "flask-heroku-parity.test-run"
RUN_ID = "TEST_RUN_ID"


def run_labels() -> dict[str, str]:
    """Return the labels that mark a container as this run's."""
    return {RUN_LABEL: os.environ.get(RUN_ID, "none")}


def shared_postgres(run_dir: Path) -> str:
    """Return the URL of this run's server, starting it for the first worker that asks."""
    with FileLock(run_dir / "postgres.lock"):
        url_file = run_dir / "postgres.url"
        if not url_file.exists():
            _, url = start_postgres(run_labels())
            url_file.write_text(url)
        return url_file.read_text()


def remove_run_containers() -> None:
    """Remove every container this run started (the shared server among them)."""
    if shutil.which("docker") is None:
        return
    selector = f"label={RUN_LABEL}={os.environ.get(RUN_ID, 'none')}"
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", selector], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True)
