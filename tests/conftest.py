"""Shared fixtures: one Postgres per run, migrated databases, the app and a client.

`make test` runs the suite on several xdist workers. They share one
Postgres server (each test works in its own scratch database) and the app
image; the process that started the workers removes the run's containers
at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from app import create_app
from app.config import normalize_database_url
from app.models import Base
from devtools.postgres import scratch_database
from tests.support.databases import engine_for, migrated_database, upgrade
from tests.support.docker import remove_run_image
from tests.support.postgres import RUN_ID, remove_run_containers, shared_postgres

# Children first, so TRUNCATE lists every table the models declare, the user's own included.
APP_TABLES = tuple(table.name for table in reversed(Base.metadata.sorted_tables))


def pytest_configure(config: pytest.Config) -> None:
    # A new id for every run (a run inside a test included), set before xdist
    # starts the workers, which inherit it: the run's containers carry it.
    if not hasattr(config, "workerinput"):
        os.environ[RUN_ID] = secrets.token_hex(4)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Modules that mostly wait on a clock first, then those that run
    # containers: each takes tens of seconds on one worker, and the quick
    # ones fill the gaps around them (make test keeps this order for xdist).
    items.sort(key=lambda item: (item.get_closest_marker("waits") is None, item.get_closest_marker("docker") is None))


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        remove_run_containers()
        remove_run_image()


@pytest.fixture(scope="session")
def run_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory shared by every worker of this run (for locks and what they share)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base
    directory = shared / f"run-{os.environ[RUN_ID]}"
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def server_url(run_dir: Path) -> str:
    """Return a URL of the Postgres server: TEST_DATABASE_URL, or this run's container."""
    existing = os.environ.get("TEST_DATABASE_URL")
    if existing:
        return normalize_database_url(existing)
    return shared_postgres(run_dir)


@pytest.fixture
def empty_db(server_url: str) -> Iterator[str]:
    """Yield the URL of a new, empty database, dropped afterwards."""
    with scratch_database(server_url, "empty") as url:
        yield url


@pytest.fixture
def migrated_db(empty_db: str) -> str:
    """Return the URL of a database of this test's own, migrated to head."""
    upgrade(empty_db, "head")
    return empty_db


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """Yield a scratch database migrated to head by Alembic (never ``create_all``)."""
    with migrated_database(server_url, "api") as url:
        yield url


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Engine]:
    """Yield an engine for looking at what the API wrote."""
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


# scrypt with n=2**10 instead of werkzeug's 2**15: a hash is about 1 ms instead of 70,
# and the API tests create a hundred accounts. Production always uses the default.
CHEAP_HASH = "scrypt:1024:8:1"


@contextmanager
def app_on(url: str, **settings: Any) -> Iterator[Flask]:
    """Yield the app on ``url`` as the tests run it (cheap hashes, ``settings`` on top), then close its pool."""
    app = create_app({"database_url": url, "environment": "testing", "password_hash_method": CHEAP_HASH, **settings})
    try:
        yield app
    finally:
        app.extensions["db.engine"].dispose()


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    with app_on(database_url) as app:
        yield app


def empty_tables(engine: Engine) -> None:
    """Delete every row of every app table."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def client(app: Flask, db: Engine) -> Iterator[FlaskClient]:
    """Yield a test client; every table is emptied afterwards."""
    yield app.test_client()
    empty_tables(db)


def row_counts(engine: Engine) -> dict[str, int]:
    """Return the number of rows in each app table."""
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in APP_TABLES}


@pytest.fixture
def counts(db: Engine):
    """Return a function that counts the rows in every app table."""
    return lambda: row_counts(db)
