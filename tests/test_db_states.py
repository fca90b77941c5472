"""Whose the database is, and a way out when it is where the code cannot follow (another branch, a restart)."""

from __future__ import annotations

import re
import subprocess
import threading
import time

import psycopg2
import pytest

from devtools.http import poll
from tests.support.history import head, revision_source
from tests.support.stack import COMPOSE, project_stack

pytestmark = pytest.mark.docker

ELSEWHERE = "0be1a5e0be1a"  # a revision made on "another branch"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with project_stack(tmp_path_factory.mktemp("states")) as stack:
        stack.up()
        yield stack


# The db service's POSTGRES_USER, which the make db-* commands connect as; PGDATA's marker of the handover.
SUPERUSER = "app"
HANDED_OVER = "/var/lib/postgresql/data/dyno-role.done"


def table_owners(stack) -> set[str]:
    return set(stack.psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").split())


def database_owner(stack) -> str:
    return stack.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'")


def hand_back_to_the_superuser(stack) -> None:
    """Leave the tables and the database a superuser's, as in a volume made before the dynos had a role."""
    stack.psql(
        "DO $$DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP "
        f"EXECUTE format('ALTER TABLE %I OWNER TO {SUPERUSER}', t); END LOOP; END$$; "
        f"ALTER DATABASE app OWNER TO {SUPERUSER}"
    )


def test_the_app_connects_as_the_databases_owner_which_is_no_superuser_as_on_heroku(stack):
    stack.sign_up("role@example.com")
    [dyno] = table_owners(stack)
    assert dyno != SUPERUSER
    assert stack.psql(f"SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{dyno}'") == "f|f|f"
    assert database_owner(stack) == dyno
    sessions = "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'app' AND pid <> pg_backend_pid()"
    assert stack.psql(sessions).split() == [dyno], "web's connections"

    # What only a superuser may do fails here as on Heroku, in Postgres's words and ours, and changes nothing.
    superuser_only = "5afe5afe0001"
    path = stack.directory / "alembic" / "versions" / f"2099_01_01_{superuser_only}_load_rows_fast.py"
    path.write_text(revision_source(superuser_only, head(), "Load rows fast",
                                    'op.execute("ALTER TABLE locations DISABLE TRIGGER ALL")'))  # fmt: skip
    try:
        refused = stack.make("migrate")
    finally:
        path.unlink()
    said = refused.stdout + refused.stderr
    why = "is a system trigger (the app's role owns the database but is no superuser, as on Heroku"
    assert refused.returncode != 0 and why in said, said
    assert stack.psql("SELECT version_num FROM alembic_version") == head()

    # A volume made before the dynos had a role: handed over once, as db starts, before anyone connects.
    hand_back_to_the_superuser(stack)
    stack.compose("exec", "-T", "db", "rm", HANDED_OVER)
    assert stack.compose("restart", "db").returncode == 0
    assert poll(lambda: stack.status("/readyz") == 200, 30), "web reconnects by itself"
    assert f"handing the database and its tables to {dyno}, the role the dynos connect as" in stack.logs("db")
    assert table_owners(stack) == {dyno}
    assert database_owner(stack) == dyno
    for step in ("downgrade", "migrate"):  # dropping and creating a table needs the database and its tables
        done = stack.make(step)
        assert done.returncode == 0, done.stdout + done.stderr

    # A snapshot of such a database: restored, it is the dynos' too.
    hand_back_to_the_superuser(stack)
    for target in (("db-snapshot", "name=superusers"), ("db-restore", "name=superusers")):
        done = stack.make(*target)
        assert done.returncode == 0, done.stdout + done.stderr
    assert table_owners(stack) == {dyno}
    assert stack.api("POST", "/tokens", {"email": "role@example.com", "password": "a long password"})[0] == 201


def test_a_password_changed_in_env_is_the_databases_after_the_next_make_up_with_nothing_lost(stack):
    """Postgres's image sets a password only as it makes a volume; here .env holds it, as config vars do on Heroku."""
    token = stack.sign_up("password@example.com")
    env = stack.directory / ".env"
    before = env.read_text()
    try:
        for password in ("changed-in-env", None):  # and back to the copy's own, as .env was
            env.write_text(before if password is None else f"{before}POSTGRES_PASSWORD={password}\n")
            up = stack.make("up")
            assert up.returncode == 0, up.stdout + up.stderr
            assert "db: POSTGRES_PASSWORD is new to this volume: giving it to app and dyno" in stack.logs("db")
            assert stack.call("GET", "/locations", token=token)[0] == 200, "the account and its token are still there"
            # As make local and make revision reach it from this machine.
            url = f"postgresql://dyno:{password or 'app'}@127.0.0.1:{stack.env['DB_PORT']}/app"
            with psycopg2.connect(url, connect_timeout=10) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM account WHERE email = 'password@example.com'")
                assert cursor.fetchone() == (1,)
            connection.close()
    finally:
        if env.read_text() != before:  # the module's other tests use the copy's own password
            env.write_text(before)
            stack.make("up")
    assert stack.compose("restart", "db").returncode == 0
    assert poll(lambda: stack.status("/readyz") == 200, 30)
    assert stack.logs("db").count("POSTGRES_PASSWORD is new") == 1, "once per change, not at every start"


def test_a_database_image_that_cannot_be_pulled_is_one_line_and_the_running_database_stays(stack):
    """POSTGRES_IMAGE set to an image that is not here and cannot be had: every db-* command said only that
    the database did not become ready, under a log line saying it was."""
    db = stack.container_id("db")
    missing = "local/no-such-postgres:0"  # no registry has it: its pull fails with internet too
    result = stack.make("status", POSTGRES_IMAGE=missing)
    assert result.returncode != 0
    assert f"==> pulling {missing}, the database's image (once)" in result.stdout
    assert f"error: {missing}, the database's image, could not be pulled (Docker said why, above): connect and " in (
        result.stderr
    )
    assert "did not become ready" not in result.stderr
    assert stack.container_id("db") == db
    assert stack.status("/readyz") == 200


def test_a_revision_from_another_branch_is_explained_everywhere_with_the_ways_out(stack):
    branch_file = stack.directory / "alembic" / "versions" / f"2099_01_01_{ELSEWHERE}_add_branch_table.py"
    create = 'op.create_table("branch_only", sa.Column("id", sa.Integer(), primary_key=True))'
    source = revision_source(ELSEWHERE, head(), "Add branch table", create, 'op.drop_table("branch_only")')
    branch_file.write_text(source)

    def web_head():
        return stack.api("GET", "/readyz")[1].get("head")

    assert poll(lambda: web_head() == ELSEWHERE, 30), "live reload brings the branch's revision to web"
    assert stack.make("migrate").returncode == 0
    branch_file.unlink()  # back to a checkout without it: live reload removes it from web too

    def readyz_explains():
        status, body = stack.api("GET", "/readyz")
        return (
            status == 503
            and body["head"] == head()
            and f"at revision {ELSEWHERE}, which this code does not contain" in body["message"]
        )

    assert poll(readyz_explains, 30)

    # A snapshot of it, restored on this checkout: nothing for web to load, so no wait and no warning.
    for target in (("db-snapshot", "name=branch"), ("db-restore", "name=branch")):
        done = stack.make(*target)
        assert done.returncode == 0 and "warning:" not in done.stderr, done.stdout + done.stderr
    assert readyz_explains()

    up = stack.make("up")
    assert up.returncode != 0
    assert f"the database is at revision {ELSEWHERE}, which this code does not contain" in up.stderr
    assert "make downgrade to=" in up.stderr and "make db-reset" in up.stderr
    assert "migrating" not in up.stdout + up.stderr, "no plan line that claims a migration will run"
    assert "note: live reload is off until make up succeeds (or make watch)" in up.stderr.splitlines()

    migrate = stack.make("migrate")
    assert migrate.returncode != 0
    said = [line for line in (migrate.stdout + migrate.stderr).splitlines() if ELSEWHERE in line]
    assert len(said) == 1 and said[0].startswith(f"FAILED: the database is at revision {ELSEWHERE}, which this code")

    status = stack.make("status")
    assert status.returncode != 0, "a script that checks make status stops here, as make migrate does"
    assert f"Current revision: {ELSEWHERE} (not in this code)" in status.stdout
    assert "make db-reset" in status.stdout

    assert readyz_explains(), "web still runs, and still explains"

    # The first way out: on the branch that has it, downgrade to a revision both share; then come back.
    branch_file.write_text(source)
    back = stack.make("downgrade", f"to={head()}")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "note: live reload is off (a make up failed or was stopped): saves do not reach web" in back.stdout
    branch_file.unlink()
    assert stack.make("up").returncode == 0
    assert stack.api("GET", "/readyz")[0] == 200


def test_postgres_restarting_under_load_answers_503_never_500_and_web_recovers_by_itself(stack):
    token = stack.sign_up("load@example.com")
    web = stack.container_id()
    answers: list[tuple[float, int, dict, dict]] = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            status, headers, body = stack.call("GET", "/locations", token=token)
            answers.append((time.monotonic(), status, headers, body))
            time.sleep(0.01)  # steady load, at a CPU cost the other tests can bear

    def database_answers() -> bool:
        try:
            psycopg2.connect(host="127.0.0.1", port=stack.env["DB_PORT"], user="app", password="app", dbname="app",
                             connect_timeout=1).close()  # fmt: skip
            return True
        except psycopg2.OperationalError:
            return False

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        assert stack.compose("restart", "db").returncode == 0
        back = poll(lambda: database_answers() and time.monotonic(), 60, 0.02)
        assert back, "Postgres did not come back"
        # The load goes on until web has served again (a 200 after Postgres was back), and a moment longer.
        poll(lambda: any(status == 200 and at >= back for at, status, _, _ in list(answers)), 30)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    statuses = {status for _, status, _, _ in answers}
    assert 500 not in statuses and statuses <= {200, 503}, statuses
    unavailable = [(headers, body) for _, status, headers, body in answers if status == 503]
    assert unavailable, "no request met the restart; the test proved nothing"
    for headers, body in unavailable:
        assert body["error"]["message"] == "The database is unavailable; retry shortly."
        assert headers["retry-after"] == "1"
    recovered = min((at for at, status, _, _ in answers if status == 200 and at >= back), default=None)
    assert recovered is not None, "web did not serve again within 30 s of Postgres accepting connections"
    print(f"\nweb served again {recovered - back:.2f} s after Postgres accepted connections "
          f"({len(unavailable)} of {len(answers)} requests answered 503)")  # fmt: skip
    assert recovered - back < 5
    assert stack.container_id() == web, "web was not restarted"
    logs = stack.logs()
    assert "Traceback" not in logs
    assert logs.count("database unavailable: GET /locations") >= len(unavailable)


def test_a_failed_release_leaves_the_running_web_serving_as_on_heroku(stack):
    """make up runs release before it touches web: a migration that fails keeps the previous web in service."""
    token = stack.sign_up("kept-serving@example.com")
    web = stack.container_id()
    failing = stack.directory / "alembic" / "versions" / "2099_01_01_fa11ed0fa11e_fail_on_purpose.py"
    failing.write_text(revision_source("fa11ed0fa11e", head(), "Fail on purpose", 'raise RuntimeError("on purpose")'))
    try:
        assert poll(lambda: stack.api("GET", "/readyz")[1].get("head") == "fa11ed0fa11e", 30), "live reload copied it"
        up = stack.make("up")
        assert up.returncode != 0
        said = "error: the release process failed (above): web still runs, as on Heroku, with the code live reload"
        assert said in up.stderr
        assert stack.container_id() == web, "web was neither stopped nor recreated"
        assert stack.api("GET", "/locations", token=token)[0] == 200, "and it still serves"
    finally:
        failing.unlink()
    # Live reload had copied the revision into web before make up stopped it; the
    # image now built is the one web started from, yet web must lose the revision.
    stack.up()
    status, body = stack.api("GET", "/readyz")
    assert (status, body["head"], body["pending"]) == (200, head(), []), "web runs this checkout's code"


def test_ctrl_c_in_make_up_stops_the_release_and_says_so_without_a_false_error(stack, tmp_path):
    """Ctrl-C during a slow migration stops release (its revision rolls back); during web's start, no false alarm.

    The first make up runs Compose from a path with a space in it, as a home directory may have.
    Then make up again finishes the start, as the message says.
    """
    slow = stack.directory / "alembic" / "versions" / "2099_01_01_5105105105a2_slow_change.py"
    slow.write_text(revision_source("5105105105a2", head(), "Slow change", 'op.execute("SELECT pg_sleep(20)")'))
    plugin = stack.make("-s", "--eval", "plugin: ; @echo $(COMPOSE_PLUGIN)", "plugin").stdout.strip()
    spaced = tmp_path / "docker plugins" / "docker-compose"
    if plugin:  # else make goes through the docker CLI
        spaced.parent.mkdir()
        spaced.symlink_to(plugin)
    try:
        stopped = stack.interrupt("5105105105a2  Slow change", "up", *([f"COMPOSE_PLUGIN={spaced}"] if plugin else []))
        assert stopped.returncode != 0
        assert "==> interrupted: the release process was stopped (a revision it was applying rolled back)" in (
            stopped.stderr
        )
        assert "error:" not in stopped.stderr and "] Interrupt" in stopped.stderr, stopped.stderr
        assert stack.compose("ps", "--status", "running", "--quiet", "release").stdout.strip() == ""
        assert stack.psql("SELECT version_num FROM alembic_version") == head(), "the slow revision rolled back"
        # Its statement stops on the server too, within a second or so, not 20 s later: it held the table's lock.
        sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()"
        assert poll(lambda: stack.psql(sleeping) == "0", 5), "the stopped release's statement runs on"
    finally:
        slow.unlink()  # a change to the image: the next make up recreates web
    stopped = stack.interrupt("==> starting web", "up")
    assert stopped.returncode != 0, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert "==> interrupted: web may still be starting (make ps shows it); make up again to finish" in stopped.stderr
    assert "error:" not in stopped.stderr, stopped.stderr
    stack.up()
    assert stack.status("/readyz") == 200


# A revision that takes 20 s and, on SIGTERM, ends its process cleanly (status 0), its work rolled back.
ENDS_CLEANLY_ON_SIGTERM = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
op.execute("CREATE TABLE half_done (id integer)")
time.sleep(20)
"""


def test_a_release_past_its_time_limit_is_stopped_and_the_deploy_fails_as_on_heroku(stack):
    """Heroku stops a release phase after an hour (RELEASE_TIMEOUT here; 3 s in the test): its revision rolls
    back, and web keeps running what it ran before. A release that exits 0 on the SIGTERM has failed too."""
    stack.up()
    web = stack.container_id()
    refused = stack.make("up", RELEASE_TIMEOUT="1h")
    assert refused.returncode != 0
    assert "error: RELEASE_TIMEOUT must be a whole number of seconds, 1 or more, got '1h'" in refused.stderr
    slow = stack.directory / "alembic" / "versions" / "2099_01_01_5105105105a3_slower_change.py"
    slow.write_text(revision_source("5105105105a3", head(), "Slower change", ENDS_CLEANLY_ON_SIGTERM))
    try:
        started = time.monotonic()
        up = stack.make("up", RELEASE_TIMEOUT="3")
        took = time.monotonic() - started
        said = up.stdout + up.stderr
        assert up.returncode != 0, said
        assert "Error: the release phase ran past 3 s (RELEASE_TIMEOUT; Heroku stops it at 1 hour" in said, said
        assert "error: the release process failed (above)" in up.stderr and "web still runs" in up.stderr
        assert took < 18, f"make up took {took:.0f} s: the revision's 20 s ran out instead"
        assert stack.psql("SELECT version_num FROM alembic_version") == head(), "the slow revision rolled back"
        assert stack.psql("SELECT to_regclass('half_done') IS NULL") == "t"
        assert stack.container_id() == web and stack.status("/healthz") == 200
    finally:
        slow.unlink()


def test_make_db_ps_lists_busy_sessions_by_their_dyno_and_make_db_kill_ends_one(stack):
    """As heroku pg:ps and pg:kill: a psql left in an open transaction is listed; it has no query to cancel, and
    force=1 ends it. Web's sessions, idle between requests, are not listed, and carry their dyno's name."""
    stack.sign_up("sessions@example.com")
    named = "SELECT DISTINCT application_name FROM pg_stat_activity WHERE usename = 'dyno' AND pid <> pg_backend_pid()"
    names = stack.psql(named).split()
    assert "web.1" in names, "web's connections carry its DYNO"
    assert all(re.fullmatch(r"[\w-]+\.\d+", name) for name in names), ("so do those of your dyno types", names)
    with subprocess.Popen(
        [*COMPOSE, "exec", "-T", "db", "psql", "-X", "-U", "dyno", "-d", "app"], cwd=stack.directory, env=stack.env,
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    ) as held:  # fmt: skip
        try:
            held.stdin.write("BEGIN;\nSELECT count(*) FROM alembic_version;\n")
            held.stdin.flush()
            idle = "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction' AND application_name = 'psql'"
            assert poll(lambda: stack.psql(idle), 30)
            pid = stack.psql(idle)

            listed = stack.make("db-ps")
            assert listed.returncode == 0, listed.stderr
            columns = [
                str(pid),
                "idle in transaction",
                "psql",
                "dyno",
                r"\d\d:\d\d:\d\d",
                "f",
                r"SELECT count\(\*\) FROM alembic_version;",
            ]
            row = "^ *" + r" *\| ".join(columns)
            assert re.search(row, listed.stdout, re.M), listed.stdout
            assert "web.1" not in listed.stdout, "idle sessions are left out"

            cancel = stack.make("db-kill", f"pid={pid}")
            no_query = (
                f"error: session {pid} is idle in transaction: it runs no query to cancel; make db-kill pid={pid} "
            )
            assert cancel.returncode != 0 and cancel.stderr.startswith(no_query + "force=1 "), cancel.stderr
            for wrong, said in (
                ("x1", "error: say which session by its pid"),
                ("99999", "error: no session 99999 on app"),
            ):
                refused = stack.make("db-kill", f"pid={wrong}")
                assert refused.returncode != 0 and refused.stderr.startswith(said), refused.stderr
            ended = stack.make("db-kill", f"pid={pid}", "force=1")
            assert (
                ended.returncode == 0 and f"==> ended session {pid} (its open transaction rolled back)" in ended.stdout
            )
            assert poll(lambda: stack.psql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == "0", 10)
            assert "==> no session of app runs a query or holds a transaction open" in stack.make("db-ps").stdout
        finally:
            held.kill()
            held.wait(10)


def dyno_connections(stack, count: int) -> tuple[list, str]:
    """Open up to ``count`` connections as the dynos' role from the host; return them and what refused the next."""
    opened: list = []
    try:
        for _ in range(count):
            opened.append(psycopg2.connect(host="127.0.0.1", port=stack.env["DB_PORT"], user="dyno", password="app",
                                           dbname="app", connect_timeout=5))  # fmt: skip
    except psycopg2.OperationalError as exc:
        return opened, str(exc)
    return opened, ""


def test_the_dynos_role_takes_the_plans_connections_and_is_refused_in_herokus_words_past_them(stack):
    """As the Essential plans' credential: DB_MAX_CONNECTIONS (20), then "too many connections for role"; the
    superuser (make db-*) still gets in. A new DB_MAX_CONNECTIONS is the role's from the next make up."""
    opened, refused = dyno_connections(stack, 25)
    try:
        # Web's own connections count too, and its pool may give one back at any moment: counted as refused.
        held = stack.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'dyno'")
        assert 'too many connections for role "dyno"' in refused, refused
        assert held == "20", (held, len(opened))
        assert stack.psql("SELECT 1") == "1", "the superuser gets in while the dynos have all theirs"
    finally:
        for connection in opened:
            connection.close()
    try:
        # Octal to sh, so refused as any other non-number: one line, and nothing in the volume lost.
        octal = stack.make("up", DB_MAX_CONNECTIONS="08")
        assert octal.returncode != 0
        assert (
            "db: error: DB_MAX_CONNECTIONS must be a whole number of 1 or more (20 as Heroku's Essential plans), "
            "got '08': fix it in .env"
        ) in octal.stderr, octal.stdout + octal.stderr
        up = stack.make("up", DB_MAX_CONNECTIONS="5")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "db: giving dyno a limit of 5 connections" in stack.logs("db")
        assert stack.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'dyno'") == "5"
    finally:
        assert stack.make("up").returncode == 0
    assert stack.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'dyno'") == "20"
    assert stack.status("/healthz") == 200
    # The server's entrypoint adds max_connections to postgres's arguments, not to another command's.
    other = stack.compose("run", "--rm", "--no-deps", "db", "echo", "ran")
    assert other.returncode == 0 and other.stdout.strip().splitlines()[-1] == "ran", other.stdout + other.stderr
