"""Shared fixtures: one Postgres per session, a migrated database, the app and a client."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from app import create_app
from app.config import normalize_database_url
from tests.support.databases import engine_for, scratch_database, upgrade
from tests.support.postgres import running_postgres

APP_TABLES = ("favorites", "locations", "account_token", "account")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Yield a URL of the Postgres server: TEST_DATABASE_URL, or a new container."""
    existing = os.environ.get("TEST_DATABASE_URL")
    if existing:
        yield normalize_database_url(existing)
        return
    with running_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """Yield a scratch database migrated to head by Alembic (never ``create_all``)."""
    with scratch_database(server_url, "api") as url:
        upgrade(url, "head")
        yield url


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Engine]:
    """Yield an engine for looking at what the API wrote."""
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = create_app({"database_url": database_url, "environment": "testing"})
    yield app
    app.extensions["db.engine"].dispose()


@pytest.fixture
def client(app: Flask, db: Engine) -> Iterator[FlaskClient]:
    """Yield a test client; every table is emptied afterwards."""
    yield app.test_client()
    with db.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE"))


def row_counts(engine: Engine) -> dict[str, int]:
    """Return the number of rows in each app table."""
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in APP_TABLES}


@pytest.fixture
def counts(db: Engine):
    """Return a function that counts the rows in every app table."""
    return lambda: row_counts(db)
