"""The migration history: one head, every step reversible, data carried forward, models in sync."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Column, Index, Integer, MetaData, Table, Text, UniqueConstraint, text
from sqlalchemy.engine import make_url

from app.migrations.history import PROJECT_ROOT, irreversible, revision_message, script_directory
from app.models import NAMING_CONVENTION, Base
from tests.conftest import app_on
from tests.support.databases import (
    alembic_cli,
    at_its_connection_limit,
    downgrade,
    failure_line,
    unpooled,
    upgrade,
    user_tables,
    version,
    without_tls,
)
from tests.support.history import (
    SEED,
    below,
    check_history,
    head,
    history_with,
    revision_source,
    revisions_oldest_first,
)


def test_single_head():
    assert len(script_directory().get_heads()) == 1


def test_history_starts_with_the_seed_story():
    story = [(rev.revision, revision_message(rev)) for rev in revisions_oldest_first()]
    assert story[: len(SEED)] == list(SEED)


def test_every_revision_has_a_docstring_for_both_directions():
    for rev in revisions_oldest_first():
        assert rev.module.upgrade.__doc__, rev.revision
        assert rev.module.downgrade.__doc__, rev.revision


def test_stairway_every_revision_upgrades_downgrades_and_upgrades_again(empty_db):
    """A revision declared IRREVERSIBLE refuses to go down instead, leaving the database where it was."""
    for rev in revisions_oldest_first():
        upgrade(empty_db, rev.revision)
        if irreversible(rev):
            with pytest.raises(CommandError, match=f"is irreversible: {re.escape(irreversible(rev))}"):
                downgrade(empty_db, below(rev.revision))
            assert version(empty_db) == rev.revision
            continue
        downgrade(empty_db, below(rev.revision))
        upgrade(empty_db, rev.revision)


def test_downgrade_to_base_leaves_no_tables(empty_db):
    stops = [rev.revision for rev in revisions_oldest_first() if irreversible(rev)]
    if stops:
        declare = "declares" if len(stops) == 1 else "declare"
        pytest.skip(f"the history cannot go back to base: {', '.join(stops)} {declare} IRREVERSIBLE")
    upgrade(empty_db, "head")
    assert user_tables(empty_db) == set(Base.metadata.tables)
    downgrade(empty_db, "base")
    assert user_tables(empty_db) == set()


def test_a_downgrade_past_an_irreversible_revision_is_refused_before_it_reverts_anything(empty_db, tmp_path):
    """The convention app.migrations.history.Irreversible documents, in a copy of the history: an irreversible
    revision with a reversible one above it. Going down to base would revert the top one, then stop: refused."""
    source = revision_source(
        "1eef1eef1eef", head(), "Forget something", "pass", 'raise Irreversible("the old values are gone")'
    ).replace("from alembic import op\n", "from alembic import op\n\nfrom app.migrations.history import Irreversible\n")
    source = source.replace("\n\n\ndef upgrade", '\n\nIRREVERSIBLE = "the old values are gone"\n\n\ndef upgrade', 1)
    above = revision_source(
        "2eef2eef2eef", "1eef1eef1eef", "Create a scratch table",
        'op.create_table("suite_scratch", sa.Column("id", sa.Integer(), primary_key=True))',
        'op.drop_table("suite_scratch")',
    )  # fmt: skip
    ini = history_with(
        tmp_path,
        ("2099_03_01_1eef1eef1eef_forget_something.py", source),
        ("2099_03_02_2eef2eef2eef_create_a_scratch_table.py", above),
    )
    assert alembic_cli(empty_db, "upgrade", "head", ini=ini).returncode == 0
    stopped = alembic_cli(empty_db, "downgrade", "base", ini=ini)
    assert stopped.returncode != 0
    message = failure_line(stopped)
    assert message.startswith(
        "downgrade to base would revert revision 1eef1eef1eef (Forget something), which is irreversible: the old "
        "values are gone. Nothing was reverted; the database is still at 2eef2eef2eef. make downgrade "
        "to=1eef1eef1eef goes down to it at most;"
    ), message
    assert "make db-restore name=" in message and "Traceback" not in stopped.stderr
    assert version(empty_db) == "2eef2eef2eef" and "suite_scratch" in user_tables(empty_db), "nothing was reverted"

    assert alembic_cli(empty_db, "downgrade", "1eef1eef1eef", ini=ini).returncode == 0, "down to it is fine"
    assert version(empty_db) == "1eef1eef1eef"
    at_it = failure_line(alembic_cli(empty_db, "downgrade", "-1", ini=ini))
    assert "the database is still at 1eef1eef1eef. No downgrade goes below it; the way back" in at_it, at_it


def test_location_written_before_zoomlevel_gets_zoom_12_from_the_zoomlevel_revision(empty_db):
    """The seed's data migration, checked at the seed revision that makes it: a user's later revisions
    (a column renamed, say) do not change what it did."""
    upgrade(empty_db, SEED[1][0])  # Create locations table
    with unpooled(empty_db) as engine:
        with engine.begin() as conn:
            account_id = conn.execute(
                text("INSERT INTO account (email, password_hash) VALUES ('old@example.com', 'x') RETURNING id")
            ).scalar_one()
            conn.execute(
                text("INSERT INTO locations (account_id, name, latitude, longitude) VALUES (:a, 'Old', 1.5, 2.5)"),
                {"a": account_id},
            )
        upgrade(empty_db, SEED[2][0])  # Add zoomlevel to locations
        with engine.connect() as conn:
            row = conn.execute(text("SELECT name, latitude, longitude, zoomlevel FROM locations")).one()
            column = conn.execute(
                text(
                    "SELECT is_nullable, column_default FROM information_schema.columns"
                    " WHERE table_name = 'locations' AND column_name = 'zoomlevel'"
                )
            ).one()
    assert tuple(row) == ("Old", 1.5, 2.5, 12)
    assert column.is_nullable == "NO"
    assert column.column_default == "12"


def test_models_match_head_alembic_check(empty_db):
    assert alembic_cli(empty_db, "upgrade", "head").returncode == 0
    result = alembic_cli(empty_db, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_alembic_check_fails_when_not_at_head(empty_db):
    upgrade(empty_db, SEED[2][0])  # before the favorites table
    result = alembic_cli(empty_db, "check")
    assert result.returncode != 0


def test_cli_reports_current_revision(empty_db):
    upgrade(empty_db, "head")
    result = alembic_cli(empty_db, "current")
    assert result.returncode == 0
    assert f"{head()} (head)" in result.stdout


@pytest.mark.parametrize("command", ["release", "status"])
def test_migration_commands_say_in_one_line_what_is_wrong_with_the_environment(command):
    """A bad setting exits 2, a database that does not answer exits 1: one line each, no traceback."""
    cli = [sys.executable, "-m", "app.migrations", command]
    base = {**os.environ, "SECRET_KEY": "test-secret", "RELEASE_DB_WAIT": "0", "DB_CONNECT_TIMEOUT": "1"}
    bad = subprocess.run(cli, env={**base, "DATABASE_URL": "mysql://u@h/d"}, capture_output=True, text=True)
    assert (bad.returncode, bad.stderr) == (
        2,
        f"{command}: DATABASE_URL must be a postgres:// or postgresql:// URL, not mysql://\n",
    )
    down = subprocess.run(
        cli, env={**base, "DATABASE_URL": "postgres://u:p@127.0.0.1:9/none"}, capture_output=True, text=True
    )
    assert down.returncode == 1 and len(down.stderr.splitlines()) == 1, down.stderr
    assert "Traceback" not in down.stderr and "127.0.0.1" in down.stderr


def test_a_release_refused_by_the_database_says_so_at_once_instead_of_waiting(server_url):
    """A wrong password or database name is refused the next time too: no 30 s of "waiting for the database"."""
    url = make_url(server_url)
    for wrong in (url.set(password="not-the-password"), url.set(database="no_such_database")):
        env = {**os.environ, "DATABASE_URL": wrong.render_as_string(hide_password=False), "SECRET_KEY": "test-secret"}
        cli = [sys.executable, "-m", "app.migrations", "release"]
        result = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and "waiting for the database" not in result.stdout, result.stdout
        [line] = result.stderr.splitlines()
        assert " answers, but refuses DATABASE_URL: " in line, line
        assert "not-the-password" not in line


def test_a_release_without_the_secret_key_web_needs_stops_before_it_migrates(empty_db):
    """On Heroku a failed release is not deployed; web dynos that crash on start would take the app down."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "APP_ENV")} | {"DATABASE_URL": empty_db}
    result = subprocess.run(
        [sys.executable, "-m", "app.migrations", "release"], env=env, capture_output=True, text=True
    )
    assert (result.returncode, result.stderr) == (
        2,
        "release: SECRET_KEY is not set: it is required when APP_ENV=production (the default); "
        "web could not start, so the release stops before it is deployed. Set one: heroku config:set "
        "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') on Heroku, "
        "a line SECRET_KEY=... in .env locally\n",
    )
    assert version(empty_db) is None, "nothing was migrated"


def test_a_database_ahead_of_the_code_stops_a_local_release_and_passes_a_heroku_rollback(empty_db):
    """Locally another branch migrated it: stop, with the ways out. On Heroku a rollback keeps the database."""
    upgrade(empty_db, "head")
    with unpooled(empty_db) as engine, engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'feedfacecafe'"))
    cli = [sys.executable, "-m", "app.migrations", "release"]
    base = {**os.environ, "DATABASE_URL": without_tls(empty_db), "SECRET_KEY": "test-secret"}
    base = {k: v for k, v in base.items() if k not in ("LOCAL_STACK", "DYNO")}
    for local_env in ({}, {"DYNO": "release.1", "LOCAL_STACK": "1"}):  # on the host; in Compose
        local = subprocess.run(cli, env={**base, **local_env}, capture_output=True, text=True)
        assert local.returncode == 1 and "make downgrade to=" in local.stderr, local.stderr
    rollback = subprocess.run(cli, env={**base, "DYNO": "release.1"}, capture_output=True, text=True)
    assert rollback.returncode == 0, rollback.stderr
    assert "a rollback leaves the database as it is" in rollback.stdout
    assert rollback.stdout.rstrip().endswith("the database is left as it is"), rollback.stdout
    assert "migrating" not in rollback.stdout, "no plan line claims a migration will run"
    assert version(empty_db) == "feedfacecafe"


def release_as_heroku_runs_it(url: str) -> subprocess.CompletedProcess[str]:
    """Run the release process as a Heroku release dyno: DYNO set, no LOCAL_STACK."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_STACK", "DYNO")}
    env |= {"DATABASE_URL": without_tls(url), "SECRET_KEY": "test-secret", "DYNO": "release.1"}
    return subprocess.run([sys.executable, "-m", "app.migrations", "release"], env=env, capture_output=True, text=True)


def test_a_heroku_rollback_passes_because_the_database_keeps_its_line_of_revisions(empty_db, tmp_path):
    """A newer release migrated past this code's head: its run kept the revisions' lineage, which shows the
    database is ahead on this code's own line, so the older release (a rollback) passes."""
    newer = revision_source("5a1e5a1e5a1e", head(), "A newer release's", "op.execute('SELECT 1')")
    ini = history_with(tmp_path, ("2099_01_01_5a1e5a1e5a1e_a_newer_release_s.py", newer))
    migrated = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert migrated.returncode == 0 and "lineage was not kept" not in migrated.stdout, migrated.stderr
    rollback = release_as_heroku_runs_it(empty_db)
    assert rollback.returncode == 0, rollback.stderr
    assert "a rollback leaves the database as it is" in rollback.stdout
    assert version(empty_db) == "5a1e5a1e5a1e"
    local = alembic_cli(empty_db, "upgrade", "head")  # locally, a branch ahead of this one: back to this head
    assert f"`make downgrade to={head()}` ({head()} is the newest revision both have;" in failure_line(local), (
        local.stderr
    )


def test_another_lines_revisions_on_a_heroku_app_stop_the_release_with_the_revision_both_lines_have(empty_db, tmp_path):
    """A branch deployed to a staging app migrated it: that is no rollback, and this code cannot run on it."""
    shared = below(head())
    if shared == "base":
        pytest.skip("the history has one revision: no line can branch off below its head")
    theirs = revision_source("b4a2c4b4a2c4", shared, "Another branch's", "op.execute('SELECT 1')")
    ini = history_with(tmp_path, ("2099_01_01_b4a2c4b4a2c4_another_branch_s.py", theirs), upto=shared)
    assert alembic_cli(empty_db, "upgrade", "head", ini=ini).returncode == 0
    stopped = release_as_heroku_runs_it(empty_db)
    assert stopped.returncode == 1, stopped.stdout
    [line] = stopped.stderr.splitlines()
    assert line.startswith(
        f"release: the database is at revision b4a2c4b4a2c4, which this code does not contain and which does not "
        f"descend from its head {head()}: another line of migrations"
    ), line
    assert f"`heroku run alembic downgrade {shared}`, then deploy this code" in line, line
    assert version(empty_db) == "b4a2c4b4a2c4", "nothing was changed"
    local = alembic_cli(empty_db, "upgrade", "head")  # the same database met by make migrate
    assert f"`make downgrade to={shared}` ({shared} is the newest revision both have;" in failure_line(local), (
        local.stderr
    )


def test_revisions_a_rebase_put_below_an_applied_one_are_named_not_counted_as_applied(empty_db, tmp_path):
    """Your revision, migrated, then rebased onto another branch's: Alembic would count that one as applied."""
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    mine = revision_source("3e3e3e3e3e3e", head(), "Mine", "op.execute('SELECT 1')")
    ini = history_with(tmp_path / "before", ("2099_01_02_3e3e3e3e3e3e_mine.py", mine))
    assert alembic_cli(empty_db, "upgrade", "head", ini=ini).returncode == 0
    theirs = revision_source("7a7a7a7a7a7a", head(), "Theirs", "op.create_table('theirs', sa.Column('id', sa.Integer))")
    rebased = revision_source("3e3e3e3e3e3e", "7a7a7a7a7a7a", "Mine", "op.execute('SELECT 1')")
    after = history_with(tmp_path / "after", ("2099_01_01_7a7a7a7a7a7a_theirs.py", theirs),
                         ("2099_01_02_3e3e3e3e3e3e_mine.py", rebased))  # fmt: skip
    migrate = alembic_cli(empty_db, "upgrade", "head", ini=after)
    assert migrate.returncode != 0
    assert failure_line(migrate).startswith(
        "the database is at 3e3e3e3e3e3e, but never ran 7a7a7a7a7a7a (Theirs): revision 3e3e3e3e3e3e was applied "
        f"after {head()}, and this code has it after 7a7a7a7a7a7a (a rebase re-pointed it)"
    ), migrate.stderr
    assert "make db-restore name=..." in failure_line(migrate)
    assert "theirs" not in user_tables(empty_db)
    down = alembic_cli(empty_db, "downgrade", "-1", ini=after)  # would stop at Theirs, as if it had run
    assert down.returncode != 0 and "but never ran 7a7a7a7a7a7a" in failure_line(down), down.stderr
    assert version(empty_db) == "3e3e3e3e3e3e"


def lineage_comment(url: str, value: str | None = None) -> str | None:
    """Return the comment on Alembic's table; with ``value``, set it first."""
    with unpooled(url) as engine, engine.begin() as conn:
        if value is not None:
            conn.exec_driver_sql("COMMENT ON TABLE alembic_version IS %s", (value,))
        return conn.execute(text("SELECT obj_description('alembic_version'::regclass)")).scalar()


def test_a_rollback_passes_where_the_kept_lineage_stops_short_of_this_codes_head(empty_db, tmp_path):
    """A release that failed halfway kept only what it applied: that gap may lead to this code's head."""
    newer = revision_source("1e1e1e1e1e1e", head(), "Newer", "op.execute('SELECT 1')")
    newest = revision_source("2e2e2e2e2e2e", "1e1e1e1e1e1e", "Newest", "op.execute('SELECT 1')")
    ini = history_with(
        tmp_path, ("2099_01_01_1e1e1e1e1e1e_newer.py", newer), ("2099_01_02_2e2e2e2e2e2e_newest.py", newest)
    )
    assert alembic_cli(empty_db, "upgrade", "head", ini=ini).returncode == 0
    lineage_comment(empty_db, json.dumps({"alembic-lineage": {"2e2e2e2e2e2e": ["1e1e1e1e1e1e"]}}))
    assert release_as_heroku_runs_it(empty_db).returncode == 0


def test_a_release_with_nothing_to_migrate_keeps_the_lineage_of_a_database_migrated_before_it_was_kept(empty_db):
    upgrade(empty_db, "head")
    lineage_comment(empty_db, "")  # as a database migrated by an older copy of the project
    assert lineage_comment(empty_db) is None
    release = release_as_heroku_runs_it(empty_db)
    assert release.returncode == 0 and "nothing to migrate" in release.stdout, release.stdout + release.stderr
    kept = json.loads(lineage_comment(empty_db))["alembic-lineage"]
    assert set(kept) == {rev.revision for rev in script_directory().walk_revisions()}, kept


def test_stamping_or_squashing_claims_no_rebase_and_leaves_other_comments_be(empty_db, tmp_path):
    """alembic stamp records the revision's own parents; revisions squashed into a new one ran as the old ones."""
    assert alembic_cli(empty_db, "stamp", "head").returncode == 0
    status = subprocess.run([sys.executable, "-m", "app.migrations", "status"], capture_output=True, text=True,
                            env={**os.environ, "DATABASE_URL": empty_db})  # fmt: skip
    assert status.returncode == 0 and "missed" not in status.stdout, status.stdout

    first, second, third = (rev for rev, _ in SEED[:3])
    squashed = revision_source("5c0a5c0a5c0a", None, "Squashed", "op.execute('SELECT 1')")
    ini = history_with(tmp_path, ("2026_01_01_5c0a5c0a5c0a_squashed.py", squashed))
    for path in (tmp_path / "alembic" / "versions").glob("*.py"):
        source = path.read_text()
        if f'revision: str = "{first}"' in source or f'revision: str = "{second}"' in source:
            path.unlink()
        elif f'revision: str = "{third}"' in source:
            path.write_text(source.replace(f'down_revision: str | Sequence[str] | None = "{second}"',
                                           'down_revision: str | Sequence[str] | None = "5c0a5c0a5c0a"'))  # fmt: skip
    mine = json.dumps({"note": "kept by another tool", **json.loads(lineage_comment(empty_db))})
    lineage_comment(empty_db, mine)
    migrate = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert migrate.returncode == 0 and "never ran" not in migrate.stdout + migrate.stderr, migrate.stderr
    assert json.loads(lineage_comment(empty_db))["note"] == "kept by another tool"
    lineage_comment(empty_db, "a note of someone else's")
    assert alembic_cli(empty_db, "upgrade", "head").returncode == 0
    assert lineage_comment(empty_db) == "a note of someone else's", "a comment that is not the lineage is let be"


def test_a_database_that_never_ran_a_revision_below_its_own_fails_release_status_and_readiness(empty_db):
    """As a rebase leaves it: this code's head applied after its grandparent, its parent never run."""
    parent = below(head())
    grandparent = below(parent) if parent != "base" else "base"
    if grandparent == "base":
        pytest.skip("the history has fewer than three revisions")
    upgrade(empty_db, "head")
    kept = json.loads(lineage_comment(empty_db))
    kept["alembic-lineage"][head()] = [grandparent]
    lineage_comment(empty_db, json.dumps(kept))
    env = {**os.environ, "DATABASE_URL": without_tls(empty_db), "SECRET_KEY": "test-secret"}
    release = subprocess.run(
        [sys.executable, "-m", "app.migrations", "release"], env=env, capture_output=True, text=True
    )
    never_ran = release.stderr.partition("but never ran ")[2].partition(": revision ")[0]
    assert release.returncode == 1 and f"{parent} (" in never_ran, release.stdout + release.stderr
    status = subprocess.run([sys.executable, "-m", "app.migrations", "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 1
    assert re.search(rf"^missed\s+{parent}\s", status.stdout, re.M), status.stdout
    with app_on(empty_db) as app:
        readiness = app.test_client().get("/readyz")
    assert readiness.status_code == 503 and never_ran in readiness.get_json()["message"]


def test_a_full_database_is_one_line_with_the_way_out(empty_db):
    """Every connection taken (web's pools keep theirs): migrate and status say which settings free them."""
    with at_its_connection_limit(empty_db) as url:
        migrate = alembic_cli(url, "upgrade", "head")
        status = subprocess.run([sys.executable, "-m", "app.migrations", "status"], cwd=PROJECT_ROOT,
                                env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)  # fmt: skip
    assert "Traceback" not in migrate.stderr + status.stderr, migrate.stderr + status.stderr
    way_out = "the database takes no more connections (its limit, as the Heroku plan's; each web thread keeps one"
    assert failure_line(migrate).startswith(f"cannot reach the database: {way_out}"), migrate.stderr
    assert status.returncode != 0 and status.stderr.startswith(f"status: cannot reach the database: {way_out}")
    assert "make scale web=1" in status.stderr and "too many connections for role" in status.stderr


def test_commands_that_have_nowhere_to_go_say_so_in_plain_words(empty_db):
    """Upgrade at head and downgrade at base are nothing to do; a wrong target is one line with the way on."""
    unset = alembic_cli("", "upgrade", "head")  # honcho run bin/proc migrate without .env's DATABASE_URL, say
    assert unset.returncode != 0 and "Traceback" not in unset.stderr, unset.stderr
    assert failure_line(unset) == "DATABASE_URL is not set: point it at a PostgreSQL database"
    wrong_password = make_url(empty_db).set(password="not-the-password").render_as_string(hide_password=False)
    refused = alembic_cli(wrong_password, "upgrade", "head")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert failure_line(refused).startswith("cannot reach the database: "), refused.stderr
    assert "password authentication failed" in failure_line(refused)
    reverted = alembic_cli(empty_db, "downgrade", "-1")
    assert reverted.returncode == 0, reverted.stderr
    assert "nothing to revert: the database has no migration applied (base)" in reverted.stdout

    # Below head first, reached from base: a head declared IRREVERSIBLE could not be left downward.
    upgrade(empty_db, below(head()))
    at = version(empty_db) or "base"
    upward = alembic_cli(empty_db, "downgrade", head())
    assert upward.returncode != 0
    assert failure_line(upward).startswith(f"{head()} is not below the database's revision ({at}): downgrade only")
    for command, step in (("downgrade", "+1"), ("upgrade", "-1")):
        wrong_way = alembic_cli(empty_db, command, step)
        assert wrong_way.returncode != 0
        assert failure_line(wrong_way).startswith(f"{command} {step} goes the other way: make downgrade "), command
    assert version(empty_db) == (None if at == "base" else at)

    drafted = alembic_cli(empty_db, "revision", "--autogenerate", "-m", "too early")
    assert drafted.returncode != 0
    assert failure_line(drafted).startswith(
        f"the database is at {at}, not at this code's head ({head()}): make migrate"
    )

    upgrade(empty_db, "head")
    for step in ("+1", "head"):
        applied = alembic_cli(empty_db, "upgrade", step)
        assert applied.returncode == 0, applied.stderr
        assert f"nothing to apply: the database is at this code's head ({head()})" in applied.stdout

    unknown = alembic_cli(empty_db, "downgrade", "bogus")
    assert unknown.returncode != 0
    assert (
        failure_line(unknown)
        == "there is no revision 'bogus' in alembic/versions: make status lists them (or use base, -1)"
    )


def test_a_revision_file_gone_is_one_line_naming_it_and_the_revision_that_needs_it(empty_db, tmp_path):
    """Alembic alone ends in a KeyError traceback, in every command."""
    # The latest revision with one parent that has no other child: deleting that parent breaks it alone.
    scripts = script_directory()
    children = [
        rev for rev in revisions_oldest_first()
        if isinstance(rev.down_revision, str) and len(scripts.get_revision(rev.down_revision).nextrev) == 1
    ]  # fmt: skip
    if not children:
        pytest.skip("no revision has a parent of its own")
    child = children[-1]
    gone = scripts.get_revision(child.down_revision)
    ini = history_with(tmp_path)
    [path] = (tmp_path / "alembic" / "versions").glob(f"*{gone.revision}*.py")
    path.unlink()
    said = f"alembic/versions has no revision {gone.revision}, which revision {child.revision} ("
    upgraded = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert upgraded.returncode != 0 and failure_line(upgraded).startswith(said), upgraded.stderr
    checked = check_history(ini, "--skip-alembic-check", DATABASE_URL=empty_db)
    assert checked.returncode == 1 and f"error: {said}" in checked.stderr, checked.stderr
    assert "Traceback" not in upgraded.stderr + checked.stderr


def test_a_merge_revision_left_from_another_branch_is_named_with_its_file_and_the_way_out(empty_db, tmp_path):
    """make merge on a branch, then git checkout of another: the merge's file stays, untracked, and revises
    a revision this branch does not have."""
    name = "2099_05_01_3e9e3e9e3e9e_merge_heads.py"
    merge = revision_source("3e9e3e9e3e9e", (head(), "a97ef414a8d6"), "Merge heads", "pass")
    ini = history_with(tmp_path, (name, merge))
    said = f"alembic/versions has no revision a97ef414a8d6, which revision 3e9e3e9e3e9e ({name}) revises: "
    upgraded = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert upgraded.returncode != 0 and failure_line(upgraded).startswith(said), upgraded.stderr
    assert "(git status lists its file as untracked), move that file out of alembic/versions" in failure_line(upgraded)


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("def upgrade(:\n    pass\n", ":1: SyntaxError: "),
        ("helper_from_another_branch()\n", ":1: NameError: name 'helper_from_another_branch' is not defined: "),
    ],
)
def test_a_revision_file_that_does_not_load_is_one_line_naming_file_and_line(empty_db, tmp_path, code, said):
    """Alembic alone prints the import's traceback, in every command."""
    source = revision_source("b10cb10cb10c", head(), "Does not load", "pass") + f"\n{code}"
    name = "2099_04_01_b10cb10cb10c_does_not_load.py"
    lines = source.count("\n") - code.count("\n")  # the line the code starts on, less one
    said = said.replace(":1:", f":{lines + 1}:")
    ini = history_with(tmp_path, (name, source))
    upgraded = alembic_cli(empty_db, "upgrade", "head", ini=ini)
    assert upgraded.returncode != 0
    assert failure_line(upgraded).startswith(f"alembic/versions/{name}{said}"), upgraded.stderr
    checked = check_history(ini, "--skip-alembic-check", DATABASE_URL=empty_db)
    assert checked.returncode == 1 and f"error: alembic/versions/{name}{said}" in checked.stderr, checked.stderr
    assert "Traceback" not in upgraded.stderr + checked.stderr


def test_constraints_that_share_a_first_column_get_names_of_their_own(empty_db):
    """Two UNIQUEs and two indexes starting with account_id: each its own name, so autogenerate sees them all."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    trips = Table(
        "trips", metadata, Column("id", Integer, primary_key=True), Column("account_id", Integer),
        Column("title", Text), Column("starts_on", Text),
        UniqueConstraint("account_id", "title"), UniqueConstraint("account_id", "starts_on"),
    )  # fmt: skip
    Index(None, trips.c.account_id, trips.c.title)
    Index(None, trips.c.account_id, trips.c.starts_on)
    with unpooled(empty_db) as engine:
        metadata.create_all(engine)
        with engine.connect() as conn:
            unique = conn.execute(
                text("SELECT count(*) FROM pg_constraint WHERE conrelid = 'trips'::regclass AND contype = 'u'")
            ).scalar()
            indexes = conn.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix_%'")).scalar()
            assert (unique, indexes) == (2, 2)
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_status_at_head_lists_what_differs_between_the_models_and_the_database(migrated_db):
    """What alembic check cannot see: a database changed by hand, or by a revision edited after it ran."""

    def status(**env: str) -> list[str]:
        said = subprocess.run(
            [sys.executable, "-m", "app.migrations", "status"], cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": migrated_db, **env}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert said.returncode == 0, said.stderr
        return said.stdout.splitlines()

    assert not [line for line in status() if "differ" in line], "at head, as the revisions made it: nothing"
    table = Base.metadata.sorted_tables[0].name  # one of the models' tables, whichever they are
    with unpooled(migrated_db) as engine, engine.begin() as conn:
        conn.execute(text(f'ALTER TABLE "{table}" ADD COLUMN by_hand text'))
        conn.execute(text("CREATE TABLE made_by_hand (id integer)"))
    lines = status()
    said = lines[lines.index(next(line for line in lines if line.startswith("The models and the database differ"))) :]
    assert "make revision would write:" in said[0]
    assert sorted(said[1:]) == [f"  drop column {table}.by_hand", "  drop table made_by_hand"]
    # On Heroku (DYNO, no LOCAL_STACK) it compares nothing: that would run the defaults' SQL on production.
    on_heroku = status(DYNO="run.1", DATABASE_URL=without_tls(migrated_db))
    assert on_heroku[-1].startswith("Pending: 0"), on_heroku
