"""The release process: wait for the database, print the plan, migrate to head.

Heroku runs it once per deploy before new web dynos start; Compose runs it
as the ``release`` service that ``web`` waits for. It needs DATABASE_URL,
and checks that web has the SECRET_KEY it needs: a release that fails is
not deployed, while web dynos that crash on start take the app down. It
exits non-zero, with one line saying why, when a setting is missing, the
database never answers or a migration fails. A database at a revision
this code lacks stops it on the local stack (another branch migrated it);
on Heroku that is a rollback, which keeps the database: it says so and
passes, unless the database's lineage shows the revision is on another
line than this code's (a branch deployed to the app), where it stops too.
"""

from __future__ import annotations

import sys
import time

from alembic import command
from alembic.util import CommandError
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_delay, wait_fixed
from tenacity.stop import stop_base

from app.config import SECRET_KEY_MISSING, SECRET_KEY_WAY_OUT, ConfigError, Settings
from app.migrations.history import SchemaState, alembic_config, record_lineage, schema_state, script_directory
from app.migrations.safety import db_error_reason, migration_engine


def say(message: str) -> None:
    print(f"release: {message}", flush=True)


# A database host whose name does not exist is not starting: it is not
# there (Compose's db exited, or DATABASE_URL names the wrong host). A
# container has its name from the moment it starts, so a few seconds tell.
# A resolver that fails for the moment ("Temporary failure in name
# resolution") is waited for, as any other error.
UNKNOWN_HOST = "Name or service not known"
UNKNOWN_HOST_GRACE = 3.0


class StopWhenHostUnknown(stop_base):
    """Stop waiting once the database's host name has failed to resolve for UNKNOWN_HOST_GRACE seconds."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        failed = retry_state.outcome.exception() if retry_state.outcome else None
        return UNKNOWN_HOST in str(failed or "") and (retry_state.seconds_since_start or 0) >= UNKNOWN_HOST_GRACE


# A server that answers and refuses these credentials, or this database,
# refuses them the next time too: waiting only hides the mistake.
REFUSED = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "does not support SSL")


def refusal(failed: BaseException | None) -> str | None:
    """Return the line in which the server refused the connection for good, or None.

    libpq tries each address of the host in turn: the refusal may be on a
    later line than the first (localhost's ::1 refused, then 127.0.0.1 answered).
    """
    said = str(getattr(failed, "orig", None) or failed or "")
    return next((line.strip() for line in said.splitlines() if any(words in line for words in REFUSED)), None)


class StopWhenRefused(stop_base):
    """Stop waiting once the server has answered with a refusal that waiting will not change."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        return refusal(retry_state.outcome.exception() if retry_state.outcome else None) is not None


def keep_lineage(connection: Connection) -> None:
    """Keep the revisions' parents with a database migrated before they were kept (history.record_lineage),
    so that a later release can tell a rollback from another line's revisions. Written only when it changes."""
    unkept = record_lineage(connection, script_directory())
    if unkept:
        say(f"note: the revisions' lineage was not kept with the database ({unkept})")


def wait_for_database(engine: Engine, timeout: float) -> SchemaState:
    """Return where the database's schema stands once it answers; raise SystemExit after ``timeout`` seconds."""
    url = make_url(str(engine.url))
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"

    def report(state: RetryCallState) -> None:
        failed = state.outcome.exception() if state.outcome else None
        if failed and (state.attempt_number == 1 or state.attempt_number % 5 == 0):
            left = max(timeout - (state.seconds_since_start or 0), 0)
            # A database that is still starting refuses connections: say so as waiting, not as an error.
            say(f"waiting for the database at {where} to accept connections ({left:.0f} s left; "
                f"so far: {db_error_reason(failed)})")  # fmt: skip

    gives_up = stop_after_delay(timeout) | StopWhenHostUnknown() | StopWhenRefused()

    @retry(retry=retry_if_exception_type(OperationalError), stop=gives_up, wait=wait_fixed(0.5), before_sleep=report,
           reraise=True)  # fmt: skip
    def ping() -> SchemaState:
        with engine.connect() as conn:
            state = schema_state(conn)
            if state.current:  # nothing to migrate: keep the lineage of a database migrated before it was kept
                keep_lineage(conn)
            return state

    try:
        state = ping()
    except OperationalError as exc:
        reason = db_error_reason(exc)
        if UNKNOWN_HOST in reason:
            raise SystemExit(
                f"release: database host {url.host} is not running, or not the right name: {reason}"
            ) from None
        refused = refusal(exc)
        if refused:
            raise SystemExit(f"release: the database at {where} answers, but refuses DATABASE_URL: {refused}") from None
        raise SystemExit(f"release: database at {where} did not answer within {timeout:g} s: {reason}") from None
    if ping.statistics["attempt_number"] > 1:
        say(f"database at {where} is up")
    return state


def run(settings: Settings) -> int:
    """Release: wait for the database, then migrate it to head; return the exit status."""
    try:
        settings.require_secret_key()
    except ConfigError:
        raise ConfigError(
            f"{SECRET_KEY_MISSING}; web could not start, so the release stops before it is deployed. "
            f"Set one: {SECRET_KEY_WAY_OUT}"
        ) from None
    engine = migration_engine(settings)
    started = time.monotonic()
    state = wait_for_database(engine, settings.release_db_wait)
    if state.current:
        say(f"database is at head ({state.head}); nothing to migrate")
        return 0
    if state.rewired:  # revisions Alembic counts as applied and the database never ran: nothing would run them
        print(f"release: {state.summary(local=settings.local)}", file=sys.stderr)
        return 1
    if not state.known:
        if settings.local or state.diverged:  # another branch's, or on Heroku another line's: not a rollback
            print(f"release: {state.summary(local=settings.local)}", file=sys.stderr)
            return 1
        say(f"{state.summary(local=False)}; the database is left as it is")
        return 0
    say(f"migrating {state.revision or 'an empty database'} -> {state.head}: {len(state.pending)} revision(s)")
    for pending in state.pending:
        say(f"  {pending.revision}  {pending.message}")
    try:
        command.upgrade(alembic_config(quiet=True), "head")
    except CommandError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    say(f"done in {time.monotonic() - started:.1f} s; database is at {state.head}")
    return 0
