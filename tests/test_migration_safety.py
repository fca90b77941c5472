"""Migrations that are safe to run anywhere, any number of times."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.migrations.history import PROJECT_ROOT, script_directory
from app.migrations.safety import LOCK_KEY
from tests.support.databases import (
    alembic_cli,
    columns,
    dbapi_dsn,
    failure_line,
    owned_by_a_role_that_is_no_superuser,
    unpooled,
    upgrade,
    version,
    without_tls,
)
from tests.support.history import head, history_with, revision_source


def test_three_concurrent_upgrades_apply_each_revision_once(empty_db):
    results: list[subprocess.CompletedProcess[str]] = []

    def migrate():
        results.append(alembic_cli(empty_db, "upgrade", "head"))

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    applied = [line for r in results for line in r.stderr.splitlines() if "Running upgrade" in line]
    revisions = [rev.revision for rev in script_directory().walk_revisions()]
    assert len(applied) == len(revisions)
    for rev in revisions:
        assert sum(f"-> {rev}," in line for line in applied) == 1, rev
    assert version(empty_db) == head()


# The throwaway revisions work on a table of their own: the user's schema may
# already have any column of the seed's tables, or not have those tables at all.
CREATE_SCRATCH = (
    "2099_01_01_c0105c0105c0_create_a_scratch_table.py",
    revision_source(
        "c0105c0105c0",
        head(),
        "Create a scratch table",
        'op.create_table("suite_scratch", sa.Column("id", sa.Integer(), primary_key=True))',
        'op.drop_table("suite_scratch")',
    ),
)


def after_scratch(revision: str, message: str, upgrade: str, downgrade: str = "pass") -> tuple[str, str]:
    """A revision after CREATE_SCRATCH: (file name, source)."""
    slug = message.lower().replace(" ", "_")
    return f"2099_01_02_{revision}_{slug}.py", revision_source(revision, "c0105c0105c0", message, upgrade, downgrade)


def adds_size_then(revision: str, failing: str = "") -> tuple[str, str]:
    """A revision after CREATE_SCRATCH that adds suite_scratch.size, then runs ``failing``: (file name, source)."""
    upgrade = f'op.add_column("suite_scratch", sa.Column("size", sa.Integer()))\n{failing}'
    return after_scratch(revision, "Add size to the scratch table", upgrade)


@pytest.mark.parametrize("where", ["local", "heroku"])
def test_a_migration_behind_a_busy_table_fails_fast_names_who_holds_it_and_changes_nothing(empty_db, tmp_path, where):
    ini = history_with(tmp_path, CREATE_SCRATCH, adds_size_then("b42b42b42b42"))
    assert alembic_cli(empty_db, "upgrade", "c0105c0105c0", ini=ini).returncode == 0
    reader = psycopg2.connect(dbapi_dsn(empty_db), application_name="nightly-report")
    # On Heroku (DYNO set, no LOCAL_STACK) the app asks for TLS, which the suite's server does not serve.
    url, env = (empty_db, {}) if where == "local" else (without_tls(empty_db), {"DYNO": "run.1"})
    try:
        # A long read: an open transaction holding ACCESS SHARE on the table.
        reader.cursor().execute("SELECT count(*) FROM suite_scratch")
        started = time.monotonic()
        result = alembic_cli(url, "upgrade", "head", ini=ini, MIGRATION_LOCK_TIMEOUT="1s", **env)
        took = time.monotonic() - started
        pid = reader.get_backend_pid()
    finally:
        reader.rollback()
        reader.close()
    assert result.returncode != 0
    assert took < 15, f"took {took:.1f} s"
    message = failure_line(result)
    assert "revision b42b42b42b42 (Add size to the scratch table) failed" in message
    # Who holds the table, since when and doing what, and how to end it: no search through pg_stat_activity.
    held = rf'could not lock table "suite_scratch" within lock_timeout 1s: pid {pid} \(nightly-report, idle in '
    held += r"transaction for \d+ s: SELECT count\(\*\) FROM suite_scratch\) holds a lock it needs\. "
    assert re.search(held, message), message
    kill = f"make db-kill pid={pid} force=1" if where == "local" else f"heroku pg:kill {pid} --force"
    assert message.endswith(f"Retry once it has finished, or end it ({kill})."), message
    assert "still at c0105c0105c0" in message
    assert columns(empty_db, "suite_scratch") == ["id"]
    assert version(empty_db) == "c0105c0105c0"


def test_a_lock_waited_for_on_another_table_than_the_statements_names_who_held_it(empty_db, tmp_path):
    """A new table's foreign key locks the table it references: the statement names one table, the wait was
    for the other, and the session that held it is named all the same."""
    child = after_scratch(
        "b43b43b43b43", "Create a child of the scratch table",
        'op.create_table("suite_child", sa.Column("scratch_id", sa.Integer(), sa.ForeignKey("suite_scratch.id")))',
        'op.drop_table("suite_child")',
    )  # fmt: skip
    ini = history_with(tmp_path, CREATE_SCRATCH, child)
    assert alembic_cli(empty_db, "upgrade", "c0105c0105c0", ini=ini).returncode == 0
    writer = psycopg2.connect(dbapi_dsn(empty_db), application_name="bulk-import")
    try:
        writer.cursor().execute("UPDATE suite_scratch SET id = id")  # ROW EXCLUSIVE, held open
        result = alembic_cli(empty_db, "upgrade", "head", ini=ini, MIGRATION_LOCK_TIMEOUT="1s")
        pid = writer.get_backend_pid()
    finally:
        writer.rollback()
        writer.close()
    message = failure_line(result)
    assert re.search(
        rf"within lock_timeout 1s: pid {pid} \(bulk-import, idle in transaction for \d+ s: UPDATE [^)]*\) has held "
        r"tables since before the wait, and may hold what it needs\. ",
        message,
    ), message
    assert version(empty_db) == "c0105c0105c0"


def test_a_writer_that_blocks_a_create_index_is_named_before_older_readers_that_do_not(empty_db, tmp_path):
    """CREATE INDEX waits for writers (ROW EXCLUSIVE), not readers (ACCESS SHARE): three readers older than
    the writer used to fill the three names, and the session that held the migration up went unnamed."""
    indexed = after_scratch(
        "b44b44b44b44", "Index the scratch table",
        'op.create_index("ix_suite_scratch_id", "suite_scratch", ["id"])',
        'op.drop_index("ix_suite_scratch_id", table_name="suite_scratch")',
    )  # fmt: skip
    ini = history_with(tmp_path, CREATE_SCRATCH, indexed)
    assert alembic_cli(empty_db, "upgrade", "c0105c0105c0", ini=ini).returncode == 0
    readers = [psycopg2.connect(dbapi_dsn(empty_db), application_name=f"report-{n}") for n in range(3)]
    writer = psycopg2.connect(dbapi_dsn(empty_db), application_name="bulk-import")
    try:
        for reader in readers:
            reader.cursor().execute("SELECT count(*) FROM suite_scratch")
        time.sleep(0.1)  # the writer's transaction is the youngest
        writer.cursor().execute("INSERT INTO suite_scratch (id) VALUES (1)")
        result = alembic_cli(empty_db, "upgrade", "head", ini=ini, MIGRATION_LOCK_TIMEOUT="1s")
        pid = writer.get_backend_pid()
    finally:
        for session in (*readers, writer):
            session.rollback()
            session.close()
    message = failure_line(result)
    assert re.search(
        rf'could not lock table "suite_scratch" within lock_timeout 1s: pid {pid} \(bulk-import, ', message
    )
    assert message.endswith(f"or end it (make db-kill pid={pid} force=1)."), message
    assert version(empty_db) == "c0105c0105c0"


def test_a_failing_revision_leaves_the_database_at_the_one_before(empty_db, tmp_path):
    ini = history_with(tmp_path, CREATE_SCRATCH, adds_size_then("b40b40b40b40", 'op.execute("SELECT 1 / 0")'))
    result = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert result.returncode != 0
    message = failure_line(result)
    assert "upgrade of revision b40b40b40b40 (Add size to the scratch table) failed" in message
    assert "division by zero" in message
    # From an empty database: the revisions before the failed one went through, and the line says so.
    assert "the database is at c0105c0105c0: the steps from base to it are done and stay done" in message
    assert version(empty_db) == "c0105c0105c0"
    assert columns(empty_db, "suite_scratch") == ["id"], "the scratch table is there, without size"


@pytest.mark.parametrize(
    ("statement", "refusal", "note"),
    [
        (
            "SET session_replication_role = replica",
            'permission denied to set parameter "session_replication_role"',
            "owns the database but is no superuser, as on Heroku, where this fails the same way",
        ),
        (  # Postgres does not trust it; Heroku Postgres lets its credential create it
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
            'permission denied to create extension "pg_stat_statements"',
            "Heroku Postgres allows some others (Dev Center: Extensions, PostGIS, and Full Text Search Dictionaries on "
            "Heroku Postgres). If pg_stat_statements is one, create it once as the superuser in the local database: "
            "docker compose exec db psql -U app app -c 'CREATE EXTENSION \"pg_stat_statements\"'",
        ),
    ],
)
def test_what_only_a_superuser_may_do_fails_in_one_line_that_says_whether_heroku_refuses_it_too(
    empty_db, tmp_path, statement, refusal, note
):
    """The app's role owns its database and is no superuser, as Heroku's (and Compose's) is."""
    ini = history_with(tmp_path, CREATE_SCRATCH, adds_size_then("5e15e15e15e1", f'op.execute("{statement}")'))
    with owned_by_a_role_that_is_no_superuser(empty_db) as url:
        result = alembic_cli(url, "upgrade", "head", ini=ini)
    assert result.returncode != 0
    message = failure_line(result)
    assert refusal in message and note in message
    assert version(empty_db) == "c0105c0105c0"
    assert columns(empty_db, "suite_scratch") == ["id"]


def test_a_python_error_in_a_revision_is_one_line_with_where_it_raised_and_the_rollback(empty_db, tmp_path):
    ini = history_with(tmp_path, CREATE_SCRATCH, adds_size_then("b41b41b41b41", "undefined_helper()"))
    result = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    message = failure_line(result)
    assert message.startswith("upgrade of revision b41b41b41b41 (Add size to the scratch table) failed at ")
    assert "2099_01_02_b41b41b41b41_add_size_to_the_scratch_table.py:" in message
    assert "NameError: name 'undefined_helper' is not defined" in message
    assert message.endswith(
        "Its changes were rolled back; the database is at c0105c0105c0: the steps from base to it are done and "
        "stay done (make status shows where it is)."
    )
    assert version(empty_db) == "c0105c0105c0"
    assert columns(empty_db, "suite_scratch") == ["id"]


def test_what_a_failed_revision_ran_in_autocommit_is_said_to_stay_and_an_invalid_index_named(empty_db, tmp_path):
    """Batches committed in autocommit_block() are not rolled back, and a failed CREATE INDEX CONCURRENTLY
    leaves an INVALID index: the one line says so, with the way out, instead of "rolled back"."""
    # Written to run again from its start, as the failure line asks: each step skips what is done.
    batches = """op.execute("ALTER TABLE suite_scratch ADD COLUMN IF NOT EXISTS note text")
with op.get_context().autocommit_block():
    for size in (1, 2):
        op.execute(f"INSERT INTO suite_scratch (id, size) VALUES ({size}, 7) ON CONFLICT DO NOTHING")
    op.create_index("ix_suite_scratch_size", "suite_scratch", ["size"], unique=True, postgresql_concurrently=True)"""
    failing = revision_source("b44b44b44b44", "b43b43b43b43", "Fill sizes and index them", batches)
    ini = history_with(tmp_path, CREATE_SCRATCH, adds_size_then("b43b43b43b43"),
                       ("2099_01_03_b44b44b44b44_fill_sizes_and_index_them.py", failing))  # fmt: skip
    assert alembic_cli(empty_db, "upgrade", "b43b43b43b43", ini=ini).returncode == 0
    result = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert result.returncode != 0
    message = failure_line(result)
    assert "could not create unique index" in message and "rolled back; " not in message.split(". ")[1]
    assert "What it ran before and in autocommit_block() was committed and stays" in message, message
    assert "ix_suite_scratch_size is left INVALID: DROP INDEX CONCURRENTLY ix_suite_scratch_size (make psql)" in message
    assert message.endswith("The rest was rolled back; the database is still at b43b43b43b43."), message
    with unpooled(empty_db) as engine, engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM suite_scratch")).scalar() == 2, "the batches stayed"
    assert columns(empty_db, "suite_scratch") == ["id", "size", "note"], "and what ran before the block"
    # Run again without the DROP: it stops on what the first run left, and names it again.
    again = failure_line(alembic_cli(empty_db, "upgrade", "head", ini=ini))
    assert "already exists" in again and "ix_suite_scratch_size is left INVALID: DROP INDEX CONCURRENTLY" in again


def test_an_interrupt_is_named_even_when_another_error_follows_it(empty_db, tmp_path):
    """Ctrl-C inside autocommit_block() ends in SQLAlchemy's PendingRollbackError: the line says interrupted."""
    follows = (
        "try:\n    raise KeyboardInterrupt\nexcept KeyboardInterrupt:\n    raise RuntimeError('Can\\'t reconnect')"
    )
    ini = history_with(tmp_path, CREATE_SCRATCH, adds_size_then("b45b45b45b45", follows))
    assert alembic_cli(empty_db, "upgrade", "c0105c0105c0", ini=ini).returncode == 0
    message = failure_line(alembic_cli(empty_db, "upgrade", "head", ini=ini))
    assert message == (
        "upgrade of revision b45b45b45b45 (Add size to the scratch table) was interrupted. Its changes were rolled "
        "back; the database is still at c0105c0105c0."
    ), message


def sleeping_on_head(url: str, directory: Path, revision: str, message: str, seconds: int) -> Path:
    """Migrate ``url`` to head; return the ini of a history with a revision after it that sleeps ``seconds``."""
    upgrade(url, "head")
    slug = message.lower().replace(" ", "_")
    source = revision_source(revision, head(), message, f'op.execute("SELECT pg_sleep({seconds})")')
    return history_with(directory, (f"2099_01_03_{revision}_{slug}.py", source))


def test_a_statement_over_the_timeout_is_cancelled_with_advice(empty_db, tmp_path):
    ini = sleeping_on_head(empty_db, tmp_path, "5105105105a1", "Backfill slowly", 60)
    started = time.monotonic()
    result = alembic_cli(empty_db, "upgrade", "head", ini=ini, MIGRATION_STATEMENT_TIMEOUT="500ms")
    assert result.returncode != 0 and time.monotonic() - started < 30, "cancelled, not left to run its 60 s"
    message = failure_line(result)
    assert "ran longer than statement_timeout 500ms" in message and "batches" in message
    assert version(empty_db) == head()


def test_a_migration_whose_connection_is_ended_is_one_line_and_rolled_back(empty_db, tmp_path):
    """Its session ended, and new ones refused for a moment (as make db-snapshot does): no traceback."""
    ini = sleeping_on_head(empty_db, tmp_path, "5105105105a3", "Slow backfill", 30)
    database = make_url(empty_db).database
    ender = psycopg2.connect(dbapi_dsn(empty_db), dbname="postgres")  # a database may not refuse its own session
    ender.autocommit = True
    running = f"datname = '{database}' AND query LIKE 'SELECT pg_sleep(30)%'"

    def end_the_migration() -> None:
        """As make db-snapshot does: refuse new sessions, end the open ones."""
        for _ in range(100):
            with ender.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {running}")
                if cursor.fetchone()[0]:
                    cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
                    cursor.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {running}")
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=end_the_migration)
    killer.start()
    try:
        result = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    finally:
        killer.join()
        with ender.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        ender.close()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    message = failure_line(result)
    assert message.startswith("upgrade of revision 5105105105a3 (Slow backfill) failed: the connection to the database")
    assert "make status shows where the database is" in message
    assert version(empty_db) == head()


def test_a_migrator_waits_for_the_one_holding_the_lock_and_gives_up_with_a_message(empty_db):
    holder = psycopg2.connect(dbapi_dsn(empty_db))
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        result = alembic_cli(empty_db, "upgrade", "head", MIGRATION_LOCK_WAIT="1")
    finally:
        holder.close()
    assert result.returncode != 0
    assert "another migration is running; waiting" in result.stderr
    assert "held the migration lock for over 1 s" in failure_line(result)
    assert version(empty_db) is None, "nothing was migrated"
    assert alembic_cli(empty_db, "upgrade", "head").returncode == 0, "the lock went with the holder's session"


def test_offline_sql_sets_the_timeouts_before_any_change():
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"],
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    sql = result.stdout
    assert sql.index("SET lock_timeout = '5s'") < sql.index("CREATE TABLE")
    assert sql.index("SET statement_timeout = '60s'") < sql.index("CREATE TABLE")
    # Each revision runs in a transaction of its own (an autocommit_block() adds one more: COMMIT; ...; BEGIN;).
    starts = [m.start() for m in re.finditer(r"^-- Running upgrade ", sql, re.M)]
    assert len(starts) == len(list(script_directory().walk_revisions()))
    for start, end in zip(starts, [*starts[1:], len(sql)], strict=True):
        assert sql.rfind("BEGIN;", 0, start) > sql.rfind("COMMIT;", 0, start), "a revision starts in a transaction"
        assert "COMMIT;" in sql[start:end], "and commits before the next one starts"
