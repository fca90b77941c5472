"""Scratch databases on the test server, and Alembic run against them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.migrations.history import PROJECT_ROOT, alembic_config, current_revision
from devtools.postgres import scratch_database


def engine_for(url: str, **kwargs) -> Engine:
    """Return an unpooled engine, so nothing holds a connection between tests."""
    return create_engine(url, poolclass=NullPool, **kwargs)


@contextmanager
def unpooled(url: str) -> Iterator[Engine]:
    """Yield an unpooled engine for ``url``, disposed afterwards."""
    engine = engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def login_role(url: str, prefix: str, attributes: str = "") -> Iterator[tuple[str, str]]:
    """Yield a new role with ``attributes`` and ``url`` as that role; afterwards what it owns is the superuser's
    again, and it is dropped."""
    role = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with unpooled(url) as engine, engine.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{prefix}' {attributes}"))
        conn.commit()
    try:
        yield role, make_url(url).set(username=role, password=prefix).render_as_string(hide_password=False)
    finally:
        with unpooled(url) as engine, engine.connect() as conn:
            for statement in (
                f"REASSIGN OWNED BY {role} TO CURRENT_USER",
                f"DROP OWNED BY {role}",
                f"DROP ROLE {role}",
            ):
                conn.execute(text(statement))
            conn.commit()


@contextmanager
def at_its_connection_limit(url: str) -> Iterator[str]:
    """Yield a URL of ``url``'s database as a role the server refuses as full (CONNECTION LIMIT 0, as Heroku plans)."""
    with login_role(url, "full", "CONNECTION LIMIT 0") as (_, as_role):
        yield as_role


@contextmanager
def owned_by_a_role_that_is_no_superuser(url: str) -> Iterator[str]:
    """Yield a URL of ``url``'s database as a role that owns it and is no superuser, as Heroku's credential."""
    with login_role(url, "owner", "NOSUPERUSER") as (role, as_role):
        with unpooled(url) as engine, engine.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{make_url(url).database}" OWNER TO {role}'))
            conn.commit()
        yield as_role


def without_tls(url: str) -> str:
    """``url`` with sslmode=disable: with DYNO set the app asks for TLS, which the suite's server does not serve."""
    return make_url(url).update_query_dict({"sslmode": "disable"}).render_as_string(hide_password=False)


def alembic_cli(url: str, *args: str, ini: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``alembic`` command line from the project root against ``url`` (``-c ini`` if given)."""
    config = ["-c", str(ini)] if ini else []
    return subprocess.run(
        [sys.executable, "-m", "alembic", *config, *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def failure_line(result: subprocess.CompletedProcess[str]) -> str:
    """Return the one line the alembic CLI printed about its failure ("FAILED: ..."), without the prefix."""
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("FAILED: ")]
    assert len(lines) == 1, f"expected one FAILED line:\n{result.stdout}\n{result.stderr}"
    return lines[0].removeprefix("FAILED: ")


@contextmanager
def database_url_env(url: str) -> Iterator[None]:
    """Point DATABASE_URL at ``url`` for the duration, as a release process would see it."""
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield
    finally:
        if saved is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = saved


def upgrade(url: str, target: str = "head") -> None:
    """Run ``alembic upgrade target`` against ``url``."""
    with database_url_env(url):
        command.upgrade(alembic_config(quiet=True), target)


def downgrade(url: str, target: str) -> None:
    """Run ``alembic downgrade target`` against ``url``."""
    with database_url_env(url):
        command.downgrade(alembic_config(quiet=True), target)


def user_tables(url: str) -> set[str]:
    """Return the tables in the public schema, less Alembic's bookkeeping table."""
    with unpooled(url) as engine:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}


def columns(url: str, table: str) -> list[str]:
    """Return the column names of ``table``."""
    with unpooled(url) as engine:
        return [c["name"] for c in inspect(engine).get_columns(table)]


def version(url: str) -> str | None:
    """Return the revision ``url``'s database is at, as the app says it (heads comma-separated; None: empty)."""
    with unpooled(url) as engine, engine.connect() as conn:
        return current_revision(MigrationContext.configure(conn))


def dbapi_dsn(url: str) -> str:
    """Return ``url`` as psycopg2 takes it, for tests that hold a raw connection."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def migrated_database(server_url: str, prefix: str) -> Iterator[str]:
    """Yield a scratch database migrated to head by Alembic (never ``create_all``), dropped afterwards."""
    with scratch_database(server_url, prefix) as url:
        upgrade(url, "head")
        yield url
