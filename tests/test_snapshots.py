"""A way back from what a developer does to the local database: snapshots, restores and a reset."""

from __future__ import annotations

import re
import signal
import time

import psycopg2
import pytest

from app.migrations.history import irreversible, script_directory
from devtools.http import poll
from devtools.project import newer_postgres_image, postgres_image
from tests.support.history import below, head, revision_source
from tests.support.stack import project_stack

pytestmark = pytest.mark.docker

# Where the Compose file mounts the database volume.
PGDATA = "/var/lib/postgresql/data"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with project_stack(tmp_path_factory.mktemp("states")) as stack:
        stack.up()
        yield stack


def ready_at_head() -> dict:
    return {"database": "ok", "revision": head(), "head": head(), "pending": []}


def test_a_snapshot_brings_back_the_data_and_its_revision_while_web_runs(stack):
    token = stack.sign_up("snap@example.com")
    place = {"name": "Saved", "latitude": 1, "longitude": 2}
    assert stack.api("POST", "/locations", place, token)[0] == 201

    taken = stack.make("db-snapshot", "name=before-migration")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "snapshot before-migration saved" in taken.stdout
    listed = stack.make("db-snapshots").stdout
    assert f"before-migration         {head()}" in listed

    # The risky part: data deleted, a revision reverted (unless the head cannot be).
    # The snapshot ended web's sessions and restarted its workers; make returned once web served again.
    status, body = stack.api("GET", "/locations", token=token)
    assert status == 200, body
    [location] = body["locations"]
    assert stack.api("DELETE", f"/locations/{location['id']}", token=token)[0] == 204
    if not irreversible(script_directory().get_revision(head())):  # a head declared IRREVERSIBLE stays
        reverted = stack.make("downgrade", f"to={below(head())}")  # the head alone, a merge revision included
        assert reverted.returncode == 0, reverted.stdout + reverted.stderr
        assert stack.api("GET", "/readyz")[0] == 503

    restored = stack.make("db-restore", "name=before-migration")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"the database is at revision {head()}" in restored.stdout
    assert stack.api("GET", "/readyz") == (200, ready_at_head()), "web serves the restored database"
    assert [loc["name"] for loc in stack.api("GET", "/locations", token=token)[1]["locations"]] == ["Saved"]


BAD_REQUESTS = [
    (("db-restore", "name=nothing-here"), "error: there is no snapshot named nothing-here (snapshots: "),
    (("db-snapshot", "name=bad name"), "error: snapshot name 'bad name' must be 1-53 letters"),
    (("db-snapshot", f"name=feature/{'x' * 46}"), "error: snapshot name 'feature/xxx"),
    (("db-snapshot",), "error: name the snapshot: make db-snapshot name="),
    (("db-snapshot", 'name=x";touch injected;"'), """error: snapshot name 'x";touch injected;"' must be"""),
    (("db-snapshot", "name=--help"), "error: snapshot name '--help' must be 1-53 letters"),  # a name, not an option
    (("db-snapshot-rm", "name=-x"), "error: snapshot name '-x' must be 1-53 letters"),
    (("db-reset",), "error: make db-reset deletes the local database: run it in a terminal to confirm, or add"),
]


def test_bad_requests_fail_with_one_line_and_change_nothing(stack):
    before = stack.make("db-snapshots").stdout
    for target, says in BAD_REQUESTS:
        result = stack.make(*target)
        assert result.returncode != 0, target
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(says), result.stderr
    assert stack.make("db-snapshots").stdout == before
    assert not (stack.directory / "injected").exists(), "a name is passed on, never run"
    assert stack.api("GET", "/readyz")[0] == 200


def test_ctrl_c_as_a_snapshot_or_a_restore_closes_the_database_waits_and_leaves_it_open(stack):
    """Both end the database's sessions for a second; a signal then used to leave it refusing every connection."""
    credentials = {"email": "ctrl-c@example.com", "password": "a long password"}
    stack.sign_up(credentials["email"])
    refusing = "SELECT string_agg(datname, ',') FROM pg_database WHERE NOT datallowconn AND datname !~ '^snap'"
    copies = "SELECT count(*) FROM pg_database WHERE datname LIKE 'app\\_\\_%'"
    # A closed terminal (SIGHUP) or kill (SIGTERM) ends make at once; the step still finishes, out of sight.
    assert stack.make("db-snapshot", "name=hung-up").returncode == 0
    for cue, target, sig in (
        ("restore hung-up: swapping it in", ("db-restore", "name=hung-up"), signal.SIGHUP),
        ("snapshot killed: copying database", ("db-snapshot", "name=killed"), signal.SIGTERM),
    ):
        stopped = stack.interrupt(cue, *target, sig=sig)
        assert stopped.returncode != 0, stopped.stdout
        assert poll(lambda: stack.psql(refusing) == "template0" and stack.psql(copies) == "0", 30), "left open"
        assert poll(lambda: stack.api("POST", "/tokens", credentials)[0] == 201, 10), "web serves the data"
    for cue, target in (
        ("snapshot interrupted: copying database", ("db-snapshot", "name=interrupted")),
        ("restore interrupted: swapping it in", ("db-restore", "name=interrupted")),
    ):
        stopped = stack.interrupt(cue, *target)
        assert stack.psql(refusing) == "template0", "every database but the snapshots takes connections"
        assert stack.psql(copies) == "0", "no copy left"
        assert poll(lambda: stack.api("POST", "/tokens", credentials)[0] == 201, 10), "web serves the data"
        assert stopped.returncode != 0, stopped.stdout
        assert ": finishing first (it takes a moment), then stopping" in stopped.stdout, stopped.stdout
        assert ": done; stopping" in stopped.stdout and "] Interrupt" in stopped.stderr, stopped.stderr
        assert f"error: interrupted (Ctrl-C) once {target[0][3:]} interrupted was done (it cannot stop halfway)" in (
            stopped.stderr
        )
        assert "Traceback" not in stopped.stderr, stopped.stderr
    listed = stack.make("db-snapshots").stdout
    for name in ("interrupted", "killed"):
        assert re.search(rf"^{name} +{head()} ", listed, re.M), f"the snapshot {name} is whole"

    # Under nohup (a hang-up ignored from the start) a closed terminal changes nothing: the snapshot completes.
    cue = "snapshot nohup: copying database"
    nohup = stack.interrupt(cue, "db-snapshot", "name=nohup", sig=signal.SIGHUP, ignoring=signal.SIGHUP)
    assert nohup.returncode == 0 and "==> snapshot nohup saved in " in nohup.stdout, nohup.stdout + nohup.stderr

    # A reset stopped once its database is recreated: empty, and it says what brings it to head.
    stopped = stack.interrupt("db-reset: dropping and recreating", "db-reset", "confirm=1")
    assert "the database is empty, at no revision: make migrate brings it to this code's head" in stopped.stderr
    empty = stack.make("db-snapshot", "name=empty")  # no alembic_version table to read a revision from
    assert empty.returncode == 0 and "(revision none)" in empty.stdout, empty.stdout + empty.stderr
    assert stack.make("migrate").returncode == 0


def test_restoring_a_snapshot_of_another_branch_says_so(stack):
    """Its revision is not in this checkout: the restore succeeds, and says what /readyz will."""
    elsewhere = "0be1a5e0be1a"
    other_branch = f"feature/other-branch.2-{'x' * 30}"  # 53 characters, the most a database name leaves
    assert stack.make("db-snapshot", "name=this-branch").returncode == 0
    stack.psql(f"UPDATE alembic_version SET version_num = '{elsewhere}'")
    try:
        # Named after a branch, slash and dot included, as make db-snapshot name=$(git branch --show-current) does.
        assert stack.make("db-snapshot", f"name={other_branch}").returncode == 0
    finally:
        stack.psql(f"UPDATE alembic_version SET version_num = '{head()}'")
    restored = stack.make("db-restore", f"name={other_branch}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"==> note: revision {elsewhere} is not in this checkout's alembic/versions" in restored.stdout
    back = stack.make("db-restore", "name=this-branch")
    assert back.returncode == 0 and "==> note:" not in back.stdout, back.stdout


def test_a_snapshot_restore_or_reset_never_ends_a_migration_running_in_another_terminal(stack):
    """make migrate in one terminal, make db-snapshot in another: the second says so; the migration goes on."""
    assert stack.make("db-snapshot", "name=before-slow").returncode == 0
    # The migration waits on a lock this test holds, so it runs for as long as the test needs.
    gate = psycopg2.connect(host="127.0.0.1", port=stack.env["DB_PORT"], user="app", password="app", dbname="app")
    gate.autocommit = True
    gate.cursor().execute("SELECT pg_advisory_lock(4242)")
    waits = 'op.execute("SET LOCAL lock_timeout = 0"); op.execute("SELECT pg_advisory_xact_lock(4242)")'
    slow = stack.directory / "alembic" / "versions" / "2099_01_01_5104e5104e51_slow_note.py"
    slow.write_text(revision_source("5104e5104e51", head(), "Slow note", waits))
    migrate = stack.start("migrate")
    try:
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_advisory_xact_lock(4242)%'"
            " AND pid <> pg_backend_pid()"
        )
        running = poll(lambda: stack.psql(waiting) == "1" or migrate.poll() is not None, 120)
        ended = migrate.poll() is not None
        assert running and not ended, migrate.communicate()[0] if ended else "the migration was not seen running"
        for target in (("db-snapshot", "name=during"), ("db-restore", "name=before-slow"), ("db-reset", "confirm=1")):
            refused = stack.make(*target)
            assert refused.returncode != 0
            assert "error: a migration is running on app (make migrate or make up in another terminal)" in (
                refused.stderr
            ), refused.stderr
    finally:
        gate.close()  # the migration goes on
        said, _ = migrate.communicate(timeout=120)
    try:
        assert migrate.returncode == 0, said
        assert stack.psql("SELECT version_num FROM alembic_version") == "5104e5104e51", "it went on to the end"
    finally:
        assert stack.make("downgrade", "to=" + head()).returncode == 0
        slow.unlink()
    assert "during" not in stack.make("db-snapshots").stdout


def test_two_snapshots_at_once_take_turns(stack):
    """A second terminal's snapshot of the same name waits for the first, then says it exists: not psql's words."""
    first = stack.start("db-snapshot", "name=twin")
    assert poll(lambda: stack.has_the_turn(first, "db-snapshot"), 30)
    second = stack.make("db-snapshot", "name=twin")
    said, _ = first.communicate(timeout=120)
    assert first.returncode == 0, said
    assert f"==> a make db-snapshot of this checkout is running (pid {first.pid}): make db-snapshot waits" in (
        second.stdout
    )
    assert second.returncode != 0 and "error: a snapshot named twin exists already" in second.stderr, second.stderr
    assert stack.make("db-snapshot-rm", "name=twin").returncode == 0


def test_db_reset_builds_first_so_code_that_does_not_compile_loses_nothing(stack):
    """The build says where the error is, and the database is still there."""
    token = stack.sign_up("still-here@example.com")
    original = stack.read("app/health.py")
    stack.write("app/health.py", original + "\ndef broken(:\n")
    try:
        reset = stack.make("db-reset", "confirm=1")
    finally:
        stack.write("app/health.py", original)
    assert reset.returncode != 0
    assert 'File "app/health.py", line' in reset.stderr and "SyntaxError" in reset.stderr, reset.stderr
    assert "error: the app image did not build" in reset.stderr
    assert stack.api("GET", "/locations", token=token)[0] == 200, "the account and its data are still there"


def test_db_reset_gives_an_empty_database_at_head_and_keeps_the_snapshots(stack):
    stack.sign_up("gone@example.com")
    stack.make("db-snapshot", "name=kept")
    reset = stack.make("db-reset", "confirm=1")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert stack.api("GET", "/readyz") == (200, ready_at_head()), "make db-reset returned once web served it"
    credentials = {"email": "gone@example.com", "password": "a long password"}
    assert stack.api("POST", "/tokens", credentials)[0] == 401, "the account went with the database"
    assert "kept " in stack.make("db-snapshots").stdout


def server_major(stack) -> str:
    return stack.psql("SHOW server_version_num")[:-4]


def volume_major(stack) -> str:
    """Return the major that made the database volume, read by a one-off db container."""
    looked = stack.compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "cat", "db", f"{PGDATA}/PG_VERSION")
    return looked.stdout.strip()


def test_a_postgres_major_change_is_said_by_up_carried_by_db_upgrade_and_undone_by_db_reset(stack):
    """Last in this module: it leaves the stack on another major."""
    had, image = server_major(stack), postgres_image()
    newer = {"POSTGRES_IMAGE": newer_postgres_image()}
    stack.sign_up("carried@example.com")
    assert stack.make("db-snapshot", "name=carried").returncode == 0
    # pg_dump carries no roles: a grant to a role of the user's own makes the restore fail halfway.
    stack.psql("CREATE ROLE reporting; GRANT SELECT ON account TO reporting")

    # db still runs the old major: a database command recreates it rather than use it unnoticed.
    status = stack.make("status", **newer)
    assert status.returncode != 0
    assert f"db: error: the database volume holds Postgres {had} data" in status.stderr, status.stderr

    started = time.monotonic()
    up = stack.make("up", **newer)
    took = time.monotonic() - started
    assert up.returncode != 0
    [said] = [line for line in (up.stdout + up.stderr).splitlines() if line.startswith("db: error:")]
    assert said.startswith(f"db: error: the database volume holds Postgres {had} data, which this Postgres ")
    assert "make db-upgrade carries it over to " in said and "make db-reset replaces it with an empty one" in said
    assert took < 30, f"make up took {took:.0f} s to say so (the release gives up on a missing db in 3 s, not 30)"
    for confirm in ([], ["confirm=1"]):
        refused = stack.make("db-reset", *confirm, **newer)
        assert refused.returncode != 0 and "make db-reset confirm=volume deletes it" in refused.stderr
    assert volume_major(stack) == had, "the volume is kept"

    failed = stack.make("db-upgrade", f"from_image={image}", **newer)
    assert failed.returncode != 0
    assert "copied table public.account" in failed.stdout, "it failed halfway, after copying"
    [error] = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: the upgrade failed, and the database volume is Postgres {had} as before: ")
    assert 'role "reporting" does not exist' in error
    assert stack.compose("up", "--detach", "--wait", "db").returncode == 0, "the old major opens it as before"
    assert stack.psql("SELECT email FROM account") == "carried@example.com"
    assert "carried " in stack.make("db-snapshots").stdout
    stack.psql("REVOKE SELECT ON account FROM reporting; DROP ROLE reporting")

    # A mark saying the data waits in a copy that is not there (removed by hand, or by a run cut short) leaves
    # the volume alone: putting back the empty volume Docker would make of that name lost everything.
    gone, mark = f"{stack.env['COMPOSE_PROJECT_NAME']}_pgdata-pg{had}", stack.directory / ".run" / "db-upgrade"
    mark.write_text(f"{gone} replaced\n")
    kept = stack.make("db-upgrade", f"from_image={image}", **newer)
    assert kept.returncode != 0
    assert f"says volume {gone} holds the Postgres {had} data to put back, and there is no such volume" in kept.stderr
    assert "delete .run/db-upgrade to go on" in kept.stderr
    mark.unlink()
    assert stack.psql("SELECT email FROM account") == "carried@example.com"

    upgraded = stack.make("db-upgrade", f"from_image={image}", **newer)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "copied table public.locations" in upgraded.stdout, "progress, table by table"
    assert stack.make("up", **newer).returncode == 0
    now = server_major(stack)
    assert now != had
    assert stack.api("GET", "/readyz") == (200, ready_at_head())
    credentials = {"email": "carried@example.com", "password": "a long password"}
    assert stack.api("POST", "/tokens", credentials)[0] == 201, "the data came along"
    assert "carried " in stack.make("db-snapshots", **newer).stdout, "and the snapshots"
    assert stack.make("db-restore", "name=carried", **newer).returncode == 0

    # Back to the first major: no way down for the data, but db-reset starts over there.
    down = stack.make("up", **{"POSTGRES_IMAGE": image})
    [said] = [line for line in (down.stdout + down.stderr).splitlines() if line.startswith("db: error:")]
    assert "make db-reset replaces it" in said and "db-upgrade" not in said, "no upgrade goes down a major"
    back = stack.make("db-upgrade", **{"POSTGRES_IMAGE": image})
    assert (
        back.returncode != 0 and f"the database volume is Postgres {now}, newer than the server's {had}" in back.stderr
    )
    reset = stack.make("db-reset", "confirm=volume", **{"POSTGRES_IMAGE": image})
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert f"db-reset: deleting the Postgres {now} database volume" in reset.stdout
    assert volume_major(stack) == had
    again = stack.make("db-upgrade", **{"POSTGRES_IMAGE": image})
    assert again.returncode == 0 and "db-upgrade: nothing to upgrade: the database volume is Postgres" in again.stdout
