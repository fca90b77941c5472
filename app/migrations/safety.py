"""Run migrations so they cannot hurt production: one at a time, bounded waits, clear failures.

``alembic/env.py`` calls this for every online run, so ``alembic upgrade``,
the release process and ``make migrate`` all get the same protection:

- a PostgreSQL advisory lock, so concurrent releases, one-off runs and
  containers starting together migrate one after another, never at once;
- ``lock_timeout`` and ``statement_timeout`` on the session, so a migration
  that would queue behind a busy table fails within seconds instead of
  blocking every request behind it;
- on failure, one message naming the revision, the table and what to do.
  Each revision runs in its own transaction, so the failed one leaves
  nothing behind and the database stays at the revision before it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from alembic.script import Script
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from tenacity import RetryCallState, retry, retry_if_result, stop_after_delay, wait_fixed

from app.config import Settings
from app.migrations.constants import FULL_WAY_OUT, LOCK_KEY, is_full, superuser_only_note
from app.migrations.history import Irreversible, irreversible, revision_line, revision_message

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"

_TABLE_PATTERNS = [
    r"\bALTER TABLE\s+(?:ONLY\s+)?(?:IF EXISTS\s+)?([\w.\"]+)",
    r"\b(?:UPDATE|INSERT INTO|DELETE FROM|LOCK TABLE|TRUNCATE(?: TABLE)?|DROP TABLE(?: IF EXISTS)?)\s+([\w.\"]+)",
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\b.*?\bON\s+(?:ONLY\s+)?([\w.\"]+)",
]


def migration_engine(settings: Settings) -> Engine:
    """Return the engine every migration tool uses: the app's settings, no pool, no SECRET_KEY needed."""
    return create_engine(settings.database_url, poolclass=NullPool, connect_args=settings.connect_args())


def db_error_reason(exc: BaseException) -> str:
    """Return the first line of what the database (or driver) said; when it is full, the way out first;
    when only a superuser may do it, why that fails here, and whether on Heroku too."""
    said = getattr(exc, "orig", None) or exc
    text = str(said).strip()
    line = text.splitlines()[0] if text else type(said).__name__
    if is_full(line):
        return f"{FULL_WAY_OUT}: {line}"
    note = superuser_only_note(line)
    return f"{line} ({note})" if note else line


def session_settings_sql(settings: Settings) -> list[str]:
    """Return the SET statements every migration session runs first."""
    return [
        f"SET lock_timeout = '{settings.migration_lock_timeout}'",
        f"SET statement_timeout = '{settings.migration_statement_timeout}'",
    ]


def prepare(connection: Connection, settings: Settings) -> None:
    """Apply the session settings and take the migration lock, waiting up to ``lock_wait`` seconds.

    The server also checks every second that this client is still there
    (PostgreSQL 14 and later): a migration stopped mid-statement (Ctrl-C in
    make migrate, a release stopped) can never commit, and its statement
    would otherwise run on to its end, holding its table's lock against the
    next try.
    """
    for statement in session_settings_sql(settings):
        connection.execute(text(statement))
    if (connection.dialect.server_version_info or ()) >= (14,):
        connection.execute(text("SET client_connection_check_interval = '1s'"))

    def announce(state: RetryCallState) -> None:
        if state.attempt_number == 1:
            print("migrate: another migration is running; waiting for it to finish", file=sys.stderr, flush=True)

    def give_up(state: RetryCallState) -> NoReturn:
        connection.rollback()
        raise CommandError(
            f"another migration has held the migration lock for over {settings.migration_lock_wait} s; "
            "wait for it to finish (or raise MIGRATION_LOCK_WAIT), then retry"
        )

    @retry(retry=retry_if_result(lambda taken: not taken), stop=stop_after_delay(settings.migration_lock_wait),
           wait=wait_fixed(0.2), before_sleep=announce, retry_error_callback=give_up)  # fmt: skip
    def take_lock() -> bool:
        return bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar())

    take_lock()
    if take_lock.statistics["attempt_number"] > 1:
        print("migrate: the other migration finished; continuing", file=sys.stderr, flush=True)
    # End the implicit transaction: the lock and the settings belong to the
    # session and stay, and Alembic opens one transaction per revision.
    connection.commit()


def release(connection: Connection) -> None:
    """Give the migration lock back (closing the connection would too)."""
    connection.rollback()
    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
    connection.commit()


class StepTracker(logging.Handler):
    """Remember the step Alembic announced last ("Running upgrade a -> b, message"), and whether it ran
    statements outside its transaction (in an autocommit_block), which a failure does not roll back."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.step: str | None = None
        self.outside = False
        self.invalid_before: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Running "):
            self.step, self.outside = message, False

    def watch(self, migration_context: Any) -> None:
        """Note each autocommit_block the revisions open (op.get_context() is this same context)."""
        block = migration_context.autocommit_block
        tracker = self

        @contextlib.contextmanager
        def noted() -> Iterator[None]:
            if not tracker.outside:  # the indexes already invalid are not this revision's doing
                tracker.invalid_before = set(invalid_indexes(migration_context.connection))
            tracker.outside = True
            with block():
                yield

        migration_context.autocommit_block = noted

    def kept(self, connection: Connection, local: bool, error: BaseException) -> str | None:
        """Say what the failed step's autocommit_block() left behind (see kept_outside); None if it opened none."""
        return kept_outside(connection, self.invalid_before, local, error) if self.outside else None

    def __enter__(self) -> StepTracker:
        logger = logging.getLogger("alembic.runtime.migration")
        self._saved_level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logger = logging.getLogger("alembic.runtime.migration")
        logger.removeHandler(self)
        logger.setLevel(self._saved_level)


def table_in(statement: str | None, *, as_written: bool = False) -> str | None:
    """Return the table a DDL or DML statement works on, if it names one: its name for a message, or
    ``as_written`` (quotes and schema kept) for Postgres's to_regclass."""
    for pattern in _TABLE_PATTERNS:
        match = re.search(pattern, statement or "", re.IGNORECASE | re.DOTALL)
        if match:
            return match.group(1) if as_written else match.group(1).strip('"')
    return None


def describe_step(step: str | None) -> str:
    """Turn "Running upgrade a -> b, Add x" into "revision b (Add x)"."""
    match = re.match(r"Running (upgrade|downgrade) (\S*) -> (\S*), (.*)", step or "")
    if not match:
        return "a revision"
    direction, source, target, message = match.groups()
    revision = target if direction == "upgrade" else source
    return f"{direction} of revision {revision} ({message})"


def invalid_indexes(connection: Connection) -> list[str]:
    """Return the indexes Postgres holds as INVALID (a CREATE INDEX CONCURRENTLY that failed, or one under way)."""
    query = text("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1")
    return list(connection.execute(query).scalars().all())


def kept_outside(connection: Connection, invalid_before: set[str], local: bool, error: BaseException) -> str:
    """Say what a failed step that opened an autocommit_block() leaves behind, and the way out.

    Alembic commits the revision's transaction as the block opens, and the
    block's statements commit one by one: all of that stays, batches done
    stay done, and a CREATE INDEX CONCURRENTLY that failed leaves its index
    INVALID (Postgres keeps it, unused; the next CREATE INDEX of that name
    fails, or with IF NOT EXISTS succeeds and leaves it invalid).
    """
    # Its own, and one the error names ('relation "ix" already exists': a run again meeting its last one's).
    invalid = [name for name in invalid_indexes(connection) if name not in invalid_before or f'"{name}"' in str(error)]
    again = "make migrate" if local else "the next release (or heroku run bin/proc migrate)"
    said = (
        f"What it ran before and in autocommit_block() was committed and stays ({again} runs the revision "
        "again from its start: what it does there must skip what is done)"
    )
    if invalid:
        names = ", ".join(invalid)
        psql = " (make psql)" if local else " (heroku pg:psql)"
        said += f"; {names} is left INVALID: DROP INDEX CONCURRENTLY {invalid[0]}{psql}, then {again}"
    return said


# The sessions that have held a lock on a table of this database for all of
# the migration's wait (their transaction is older than lock_timeout): those
# that hold the statement's own table first, of them those holding more than
# a read's ACCESS SHARE (which blocks only ACCESS EXCLUSIVE: not a CREATE
# INDEX, say, which a writer's ROW EXCLUSIVE does block), then the oldest.
# A session of another role shows no state or query to a role that is no
# superuser (the app's, as on Heroku), nor when its transaction began.
_HOLDERS = text(
    """
    SELECT a.pid, a.application_name, a.state,
           extract(epoch FROM now() - a.xact_start)::int AS seconds,
           left(regexp_replace(a.query, '\\s+', ' ', 'g'), 60) AS query,
           coalesce(bool_or(l.relation = to_regclass(:table)), false) AS on_table,
           coalesce(bool_or(l.relation = to_regclass(:table) AND l.mode <> 'AccessShareLock'), false) AS beyond_read
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid()
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND (a.xact_start IS NULL OR a.xact_start < now() - current_setting('lock_timeout')::interval)
    GROUP BY a.pid, a.application_name, a.state, a.xact_start, a.query
    ORDER BY on_table DESC, beyond_read DESC, a.xact_start NULLS LAST, a.pid
    """
)


class Holder(NamedTuple):
    """A session that held a lock a migration waited for: its pid, and it in words."""

    pid: int
    words: str  # pid, application name, state for how long, its last statement
    on_table: bool  # it holds the statement's table; else it held another since before the wait


def lock_holders(connection: Connection, exc: DBAPIError) -> list[Holder]:
    """Return, when ``exc`` is a lock_timeout, the sessions that held a lock it waited for.

    The failure names them, and how to end one, rather than send the user to
    pg_stat_activity. Asked after the rollback: the sessions hold on. The
    lock waited for can be another table's than the statement's (a foreign
    key locks the table it references): the statement's table's holders are
    named when there are any, else every session that has held a table since
    before the wait.
    """
    if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
        return []
    try:
        rows = connection.execute(_HOLDERS, {"table": table_in(exc.statement, as_written=True)}).all()
    except DBAPIError:  # the words stay general; the failure itself is what matters
        connection.rollback()
        return []
    on_table = [row for row in rows if row.on_table]
    described: list[Holder] = []
    for pid, name, state, seconds, query, holds_table, _ in (on_table or rows)[:3]:
        who = f"{name}, " if name else ""
        doing = f"{state} for {seconds} s" if state else "another role's session"
        last = f": {query}" if state and query else ""
        described.append(Holder(pid, f"pid {pid} ({who}{doing}{last})", holds_table))
    return described


def position(current: str | None, started: str | None) -> str:
    """Say where the database is after a failed step: still where the command found it, or further on."""
    if current == started:
        return f"the database is still at {current or 'base (empty)'}"
    return (
        f"the database is at {current or 'base (empty)'}: the steps from {started or 'base'} to it are done "
        "and stay done (make status shows where it is)"
    )


# The words for a step that failed and was rolled back whole.
ROLLED_BACK = "Its changes were rolled back"


def aftermath(current: str | None, started: str | None, kept: str | None, undone: str) -> str:
    """Say what a failed step left behind: what its autocommit_block() kept, or else ``undone`` (the words
    for a step rolled back whole), then where the database is."""
    at = position(current, started)
    return f"{kept}. The rest was rolled back; {at}" if kept else f"{undone}; {at}"


def failure_message(
    exc: DBAPIError,
    step: str | None,
    settings: Settings,
    current: str | None,
    *,
    kept: str | None,
    started: str | None,
    holders: list[Holder] | None = None,
) -> str:
    """Return the one-line explanation of a failed migration step (``kept``: what autocommit left behind;
    ``started``: the database's revision when the command began; ``holders``: the sessions holding a lock on
    the table, when the step could not lock it)."""
    code = getattr(exc.orig, "pgcode", None)
    reason = db_error_reason(exc)
    table = table_in(exc.statement)
    where = f' on table "{table}"' if table else ""
    target = f'table "{table}"' if table else "its table"
    nothing = aftermath(current, started, kept, "Nothing from this revision was applied")
    if code == LOCK_NOT_AVAILABLE:
        timeout = settings.migration_lock_timeout
        failed = f"{describe_step(step)} failed: could not lock {target} within lock_timeout {timeout}"
        if not holders:
            return (
                f"{failed}, because another session holds a conflicting lock (a long transaction or busy traffic). "
                f"{nothing}. Retry when the table is quieter, or find the blocking session in pg_stat_activity."
            )
        pid = holders[0].pid
        kill = f"make db-kill pid={pid} force=1" if settings.local else f"heroku pg:kill {pid} --force"
        words = "; ".join(holder.words for holder in holders)
        one = len(holders) == 1
        if holders[0].on_table:
            held = f"{words} holds a lock it needs" if one else f"{words} hold locks it needs"
        else:  # none holds the statement's table: the wait was for another (a foreign key's), or theirs is gone
            held = f"{words} {'has' if one else 'have'} held tables since before the wait, and may hold what it needs"
        return f"{failed}: {held}. {nothing}. Retry once it has finished, or end it ({kill})."
    if code == QUERY_CANCELED:
        return (
            f"{describe_step(step)} failed: a statement{where} ran longer than statement_timeout "
            f"{settings.migration_statement_timeout}. {nothing}. "
            "Split the work into batches, or raise MIGRATION_STATEMENT_TIMEOUT for this run (make migrate "
            "MIGRATION_STATEMENT_TIMEOUT=10min; on Heroku, heroku run --env MIGRATION_STATEMENT_TIMEOUT=10min "
            "bin/proc migrate)."
        )
    return f"{describe_step(step)} failed{where}: {reason}. {aftermath(current, started, kept, ROLLED_BACK)}."


def lost_connection_message(exc: DBAPIError, step: str | None) -> str:
    """Return the one-line explanation of a step whose connection was lost (Postgres rolled the step back)."""
    return (
        f"{describe_step(step)} failed: the connection to the database was lost ({db_error_reason(exc)}). "
        "Postgres rolled back this revision's changes; make status shows where the database is, "
        "and make migrate carries on from there"
    )


def interrupted(exc: BaseException | None) -> bool:
    """Whether Ctrl-C is behind ``exc``: itself, or what it was raised while handling (an autocommit_block()
    that met the interrupt ends in SQLAlchemy's PendingRollbackError, which would hide it)."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def way_back(local: bool) -> str:
    """Where a database goes back from past an irreversible revision."""
    if local:
        return "a snapshot taken before it (make db-snapshots lists them; make db-restore name=...), or make db-reset"
    return "a backup taken before it (heroku pg:backups lists them; heroku pg:backups:restore)"


def irreversible_message(on_the_way: list[Script], destination: str, current: str | None, local: bool) -> str:
    """Explain a downgrade refused before it began: it would pass a revision that declares IRREVERSIBLE."""
    newest = on_the_way[0]
    down_to = f"make downgrade to={newest.revision}" if local else f"heroku run alembic downgrade {newest.revision}"
    limit = "No downgrade goes below it" if current == newest.revision else f"{down_to} goes down to it at most"
    return (
        f"downgrade to {destination} would revert revision {newest.revision} ({revision_message(newest)}), which is "
        f"irreversible: {irreversible(newest)}. Nothing was reverted; the database is still at "
        f"{current or 'base (empty)'}. {limit}; the way back past it is {way_back(local)}"
    )


def code_failure_message(
    exc: BaseException, step: str | None, current: str | None, *, kept: str | None, started: str | None, local: bool
) -> str:
    """Return the one-line explanation of a step that raised in Python (or was interrupted), with where it raised.

    The transaction of the step was rolled back by then, as for a database error.
    """
    if isinstance(exc, Irreversible):
        said = (
            f"{describe_step(step)} is irreversible: {exc}. Nothing of it was reverted; {position(current, started)}."
        )
        return f"{said} The way back past it is {way_back(local)}"
    undone = aftermath(current, started, kept, ROLLED_BACK)
    if interrupted(exc):
        return f"{describe_step(step)} was interrupted. {undone}."
    frames = traceback.extract_tb(exc.__traceback__)
    place = revision_line(exc) or (f"{_shown(frames[-1].filename)}:{frames[-1].lineno}" if frames else "")
    where = f" at {place}" if place else ""
    error = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{describe_step(step)} failed{where}: {type(exc).__name__}: {error}. {undone}."


def _shown(filename: str) -> str:
    """Return ``filename`` relative to the working directory (the project root) when it is inside it."""
    path = Path(filename)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else filename
