"""Throwaway Postgres for tools and tests: a container on the loopback, and scratch databases on a server."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# testcontainers reads these at import. Ryuk (its reaper container) cannot be
# pulled on a machine without a registry, and the suite removes its own
# containers; TC_HOST keeps every connection on the loopback interface.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")
# Inside a container (as CI may be) testcontainers would dial the bridge gateway;
# the port is published on the host's loopback, so dial that.
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from testcontainers.community.postgres import PostgresContainer

from app.config import normalize_database_url
from devtools.project import postgres_image


class LoopbackPostgresContainer(PostgresContainer):
    """A PostgresContainer whose port is published on 127.0.0.1 only."""

    def __init__(self, image: str, **kwargs: Any) -> None:
        super().__init__(image, **kwargs)
        # testcontainers passes this mapping to docker-py, which takes (host address,) as a binding.
        self.ports = {f"{self.port}/tcp": ("127.0.0.1",)}  # type: ignore[dict-item]


def start_postgres(labels: dict[str, str] | None = None) -> tuple[LoopbackPostgresContainer, str]:
    """Start a Postgres container of POSTGRES_IMAGE carrying ``labels``; return it and its URL."""
    container = LoopbackPostgresContainer(postgres_image(), username="test", password="test", dbname="test")
    container.with_kwargs(labels=labels or {})
    container.start()
    return container, normalize_database_url(container.get_connection_url(driver=None))


@contextmanager
def running_postgres(labels: dict[str, str] | None = None) -> Iterator[str]:
    """Yield the URL of a fresh Postgres container, removed afterwards."""
    container, url = start_postgres(labels)
    try:
        yield url
    finally:
        container.stop()


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create an empty database next to ``server_url``'s, yield its URL, then drop it.

    The suite never writes to the database named in TEST_DATABASE_URL itself.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
