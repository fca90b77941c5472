"""Start the throwaway Postgres server the suite runs against."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

# testcontainers reads these at import. Ryuk (its reaper container) cannot be
# pulled on a machine without a registry, and the suite removes its own
# container; TC_HOST keeps every connection on the loopback interface.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")
# Inside a container (as CI may be) testcontainers would dial the bridge gateway;
# the port is published on the host's loopback, so dial that.
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

from testcontainers.community.postgres import PostgresContainer

from app.config import normalize_database_url

# A version Heroku Postgres offers; CI points POSTGRES_IMAGE at a local stand-in.
DEFAULT_IMAGE = "postgres:17"


def postgres_image() -> str:
    """Return the image to start, from POSTGRES_IMAGE."""
    return os.environ.get("POSTGRES_IMAGE") or DEFAULT_IMAGE


class LoopbackPostgresContainer(PostgresContainer):
    """A PostgresContainer whose port is published on 127.0.0.1 only."""

    def __init__(self, image: str, **kwargs) -> None:
        super().__init__(image, **kwargs)
        self.ports = {f"{self.port}/tcp": ("127.0.0.1",)}


@contextmanager
def running_postgres(image: str | None = None) -> Iterator[str]:
    """Yield the URL of a fresh Postgres container, removed afterwards."""
    container = LoopbackPostgresContainer(image or postgres_image(), username="test", password="test", dbname="test")
    with container:
        yield normalize_database_url(container.get_connection_url(driver=None))
