"""The throwaway Postgres server the suite runs against: one per pytest run, shared by every xdist worker."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

# testcontainers reads these at import. Ryuk (its reaper container) cannot be
# pulled on a machine without a registry, and the suite removes its own
# containers; TC_HOST keeps every connection on the loopback interface.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")
# Inside a container (as CI may be) testcontainers would dial the bridge gateway;
# the port is published on the host's loopback, so dial that.
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

from testcontainers.community.postgres import PostgresContainer

from app.config import normalize_database_url
from app.schema import PROJECT_ROOT

# The project's Postgres major, as on Heroku; CI points POSTGRES_IMAGE at a local stand-in.
POSTGRES_MAJOR = (PROJECT_ROOT / ".postgres-version").read_text().strip()
DEFAULT_IMAGE = f"postgres:{POSTGRES_MAJOR}"

# Every container a run starts carries this label, so the run can remove them all at the end.
RUN_LABEL = "flask-heroku-parity.test-run"
RUN_ID = "TEST_RUN_ID"


def postgres_image() -> str:
    """Return the image to start, from POSTGRES_IMAGE."""
    return os.environ.get("POSTGRES_IMAGE") or DEFAULT_IMAGE


def run_labels() -> dict[str, str]:
    """Return the labels that mark a container as this run's."""
    return {RUN_LABEL: os.environ.get(RUN_ID, "none")}


class LoopbackPostgresContainer(PostgresContainer):
    """A PostgresContainer whose port is published on 127.0.0.1 only."""

    def __init__(self, image: str, **kwargs) -> None:
        super().__init__(image, **kwargs)
        self.ports = {f"{self.port}/tcp": ("127.0.0.1",)}


def start_postgres(image: str | None = None) -> tuple[LoopbackPostgresContainer, str]:
    """Start a Postgres container labelled as this run's; return it and its URL."""
    container = LoopbackPostgresContainer(image or postgres_image(), username="test", password="test", dbname="test")
    container.with_kwargs(labels=run_labels())
    container.start()
    return container, normalize_database_url(container.get_connection_url(driver=None))


@contextmanager
def running_postgres(image: str | None = None) -> Iterator[str]:
    """Yield the URL of a fresh Postgres container, removed afterwards."""
    container, url = start_postgres(image)
    try:
        yield url
    finally:
        container.stop()


def shared_postgres(run_dir: Path) -> str:
    """Return the URL of this run's server, starting it for the first worker that asks."""
    with FileLock(run_dir / "postgres.lock"):
        url_file = run_dir / "postgres.url"
        if not url_file.exists():
            _, url = start_postgres()
            url_file.write_text(url)
        return url_file.read_text()


def remove_run_containers() -> None:
    """Remove every container this run started (the shared server among them)."""
    selector = f"label={RUN_LABEL}={os.environ.get(RUN_ID, 'none')}"
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", selector], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True)
