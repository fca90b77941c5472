"""The release process: wait for the database, print the plan, migrate to head.

Heroku runs it once per deploy before new web dynos start; Compose runs it
as the ``release`` service that ``web`` waits for. It needs DATABASE_URL
only (not SECRET_KEY), and exits non-zero, with one line saying why, when
the database never answers or a migration fails.
"""

from __future__ import annotations

import os
import sys
import time

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from app.config import ConfigError, database_url, migration_connect_args
from app.schema import alembic_config, script_directory


def say(message: str) -> None:
    print(f"release: {message}", flush=True)


def wait_for_database(engine: Engine, timeout: float) -> None:
    """Return once the database accepts a query; raise SystemExit after ``timeout`` seconds."""
    url = make_url(str(engine.url))
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            if attempt > 1:
                say(f"database at {where} is up")
            return
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            left = deadline - time.monotonic()
            if left <= 0:
                message = f"release: database at {where} did not answer within {timeout:g} s: {reason}"
                raise SystemExit(message) from None
            if attempt == 1 or attempt % 5 == 0:
                say(f"waiting for database at {where} ({left:.0f} s left): {reason}")
            time.sleep(min(0.5, max(left, 0.05)))


def plan(engine: Engine) -> tuple[str | None, str | None, list[str]]:
    """Return (current revision, head, lines describing each revision to apply, oldest first)."""
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    current = heads[0] if heads else None
    scripts = script_directory()
    head = scripts.get_current_head()
    pending = list(scripts.iterate_revisions(head, current)) if head != current else []
    lines = [f"{rev.revision}  {(rev.doc or '').splitlines()[0] if rev.doc else ''}" for rev in reversed(pending)]
    return current, head, lines


def main() -> int:
    try:
        url = database_url()
        connect_args = migration_connect_args()
    except ConfigError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 2
    timeout = float(os.environ.get("RELEASE_DB_WAIT", "30"))
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    started = time.monotonic()
    wait_for_database(engine, timeout)
    current, head, lines = plan(engine)
    if not lines:
        say(f"database is at head ({head}); nothing to migrate")
        return 0
    say(f"migrating {current or 'an empty database'} -> {head}: {len(lines)} revision(s)")
    for line in lines:
        say(f"  {line}")
    config = alembic_config()
    config.attributes["configure_logger"] = False
    try:
        command.upgrade(config, "head")
    except CommandError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    say(f"done in {time.monotonic() - started:.1f} s; database is at {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
