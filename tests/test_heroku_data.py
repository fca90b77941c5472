"""make db-pull and make db-push against a Postgres that plays Heroku's: TLS only, real rows, a stub `heroku`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devtools.docker import docker, label_args, unique, wait_for_postgres
from devtools.http import poll
from devtools.project import newer_postgres_image, postgres_image
from tests.support.heroku import path_without_heroku, stub_heroku
from tests.support.history import SEED, after
from tests.support.postgres import run_labels
from tests.support.stack import COMPOSE, Stack, project_stack

pytestmark = pytest.mark.docker

APP = "my-maps"
LOCATIONS = 5000
# Heroku Postgres takes TLS only: the server below refuses any plain connection.
HBA = "local all all trust\nhostssl all all all scram-sha-256\n"
START_TLS_ONLY = (
    "mkdir -p /tls && cd /tls"
    " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=heroku"
    " -keyout k -out c 2>/dev/null"
    ' && chown postgres k c && chmod 600 k && printf %s "$HBA" > hba && chown postgres hba'
    " && exec docker-entrypoint.sh postgres -c ssl=on -c ssl_cert_file=/tls/c -c ssl_key_file=/tls/k"
    " -c hba_file=/tls/hba"
)
# Several thousand rows, with text that is not ASCII, as production has. Written
# at the seed's last revision, whose tables they fill; your later revisions then
# carry them to head, as they would carry production's.
DATA = f"""
INSERT INTO account (email, password_hash)
SELECT 'person' || i || '@example.com', 'scrypt:real-hash-' || i FROM generate_series(1, 40) AS i;
INSERT INTO account_token (account_id, token_hash) SELECT id, repeat('a', 63) || (id % 10) FROM account WHERE id <= 9;
INSERT INTO locations (account_id, name, latitude, longitude, zoomlevel)
SELECT 1 + i % 40, (ARRAY['Zürich', 'São Paulo', '東京', 'Kraków'])[1 + i % 4] || ' ' || i, i % 90, i % 180, i % 23
FROM generate_series(1, {LOCATIONS}) AS i;
INSERT INTO favorites (account_id, location_id) SELECT account_id, id FROM locations WHERE id % 7 = 0;
"""
STUB = """#!/bin/sh
case "$*" in
  "auth:whoami") echo you@example.com ;;
  "config:get DATABASE_URL --app my-maps") cat "$STUB_URL_FILE" ;;
  *) m='\u203a'; printf ' %s  Error: Couldn%st find that app.\n %s\n %s  Error ID: x\n' "$m" "'" "$m" "$m" >&2; exit 1;;
esac
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with project_stack(tmp_path_factory.mktemp("herokudata")) as stack:
        stack.up()
        yield stack


def heroku_postgres(stack: Stack, image: str) -> str:
    """Start a TLS-only Postgres on the stack's network; return its container name."""
    name = unique("theroku")
    docker(
        "run", "-d", "--name", name, "--network", f"{stack.name}_default", "--entrypoint", "sh",
        *label_args(run_labels()), "-e", f"HBA={HBA}",
        "-e", "POSTGRES_USER=u", "-e", "POSTGRES_PASSWORD=p", "-e", "POSTGRES_DB=prod", image, "-c", START_TLS_ONLY,
    )  # fmt: skip
    wait_for_postgres(name)
    return name


@pytest.fixture(scope="module")
def heroku(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Yield the Heroku stand-in: its URL, and an environment whose `heroku` answers config:get with it."""
    name = heroku_postgres(stack, postgres_image())
    try:
        url = f"postgres://u:p@{name}:5432/prod"
        one_off = ("run", "--rm", "--no-deps", "-e", f"DATABASE_URL={url}?sslmode=require", "web")
        seeded = stack.compose(*one_off, "alembic", "upgrade", SEED[-1][0])
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        docker("exec", name, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "u", "-d", "prod", "-c", DATA)
        release = stack.compose(*one_off, "bin/proc", "release")
        assert release.returncode == 0, release.stdout + release.stderr
        bin_dir = tmp_path_factory.mktemp("stub")
        (bin_dir / "url").write_text(url)
        yield {
            "name": name, "url": url, "HEROKU_APP": APP, "STUB_URL_FILE": str(bin_dir / "url"),
            "PATH": stub_heroku(bin_dir, STUB),
        }  # fmt: skip
    finally:
        docker("rm", "-f", "-v", name, check=False)


def source_sql(heroku: dict[str, str], sql: str) -> str:
    return docker("exec", heroku["name"], "psql", "-X", "-Atq", "-U", "u", "-d", "prod", "-c", sql).stdout.strip()


def source_rows(heroku: dict[str, str]) -> int:
    """Every row of the app's database, whatever tables your revisions added to the seed's."""
    tables = source_sql(heroku, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split()
    return sum(int(source_sql(heroku, f'SELECT count(*) FROM "{table}"')) for table in tables)


def tokens(heroku: dict[str, str]) -> int:
    return int(source_sql(heroku, "SELECT count(*) FROM account_token"))


def pull(stack: Stack, heroku: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in heroku.items() if k.isupper()}
    return stack.make("db-pull", *args, **env)


def test_pull_copies_the_apps_database_scrubs_it_and_the_app_serves_it(stack, heroku):
    result = pull(stack, heroku, "confirm=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restored table public.locations" in result.stdout, "progress, table by table"
    [summary] = [line for line in result.stdout.splitlines() if "rows/s" in line]
    print(f"\n{summary}")
    assert f"{source_rows(heroku) - tokens(heroku)} rows" in summary, "every row but the scrubbed tokens"
    assert stack.psql("SELECT count(*) FROM locations") == str(LOCATIONS)
    assert stack.psql("SELECT name FROM locations WHERE id = 2") == "東京 2", "non-ASCII text arrives intact"
    assert stack.psql("SELECT email FROM account WHERE id = 7") == "user7@example.com", "scrubbed"
    assert stack.psql("SELECT count(*) FROM account_token") == "0", "production's tokens never work locally"
    # Web's workers reconnected after the swap before make returned: they serve the pulled data.
    sign_in = {"email": "user7@example.com", "password": "demo password"}
    assert stack.api("POST", "/tokens", sign_in)[0] == 201, "scrubbed password signs in"
    assert stack.api("GET", "/readyz")[0] == 200, "the pulled database is at this code's head"


def test_a_database_behind_the_code_is_pulled_as_it_is_and_make_migrate_brings_it_to_head(stack, heroku):
    older = f"{heroku['url'].rsplit('/', 1)[0]}/older"
    docker("exec", heroku["name"], "psql", "-U", "u", "-d", "prod", "-c", "CREATE DATABASE older")
    behind = stack.compose("run", "--rm", "--no-deps", "-e", f"DATABASE_URL={older}?sslmode=require", "web",
                           "alembic", "upgrade", SEED[1][0])  # fmt: skip
    assert behind.returncode == 0, behind.stderr
    assert pull(stack, heroku, "confirm=1", f"from={older}").returncode == 0
    # /readyz says where the pulled database is and what is pending.
    status, body = stack.api("GET", "/readyz")
    assert (status, body["revision"]) == (503, SEED[1][0]), body
    assert [p["revision"] for p in body["pending"]] == [rev for rev, _ in after(SEED[1][0])]
    assert stack.make("migrate").returncode == 0
    assert stack.api("GET", "/readyz")[0] == 200


def test_without_confirmation_or_with_scrub_off_it_says_what_it_does(stack, heroku):
    before = stack.psql("SELECT count(*) FROM account")
    for no in ([], ["confirm=0"]):
        refused = pull(stack, heroku, *no)
        assert refused.returncode != 0
        assert [line for line in refused.stderr.splitlines() if line.startswith("error:")] == [
            "error: make db-pull replaces the local database: run it in a terminal to confirm, or add confirm=1"
        ], no
    assert stack.psql("SELECT count(*) FROM account") == before
    raw = pull(stack, heroku, "confirm=1", "scrub=0")
    assert raw.returncode == 0 and "NOT scrubbed (scrub=0)" in raw.stdout
    assert stack.psql("SELECT email FROM account WHERE id = 7") == "person7@example.com"


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("from=postgres://u:p@no-such-host:5432/prod", "error: cannot reach the source database: "),
        ("plain", "error: the source database refuses plain connections (Heroku Postgres takes TLS only)"),
        ("from=postgres://u:wrong@{name}:5432/prod", "error: cannot reach the source database: "),
        ("from=garbage", "error: from= takes a postgres://user:password@host:port/database URL; this is not one"),
    ],
)
def test_a_source_it_cannot_use_is_one_line_and_changes_nothing(stack, heroku, source, said):
    before = stack.psql("SELECT count(*) FROM locations")
    mine = unique("mine") + "@example.com"
    stack.psql(f"INSERT INTO account (email, password_hash) VALUES ('{mine}', 'x')")
    if source == "plain":
        source = f"from={heroku['url']}?sslmode=disable"
    result = pull(stack, heroku, "confirm=1", source.format(name=heroku["name"]))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(said), result.stderr
    assert stack.psql("SELECT count(*) FROM locations") == before
    assert stack.psql(f"SELECT count(*) FROM account WHERE email = '{mine}'") == "1", "nothing replaced"


def test_a_source_of_a_newer_major_is_refused_with_the_versions_and_the_way_out(stack, heroku):
    newer = heroku_postgres(stack, newer_postgres_image())
    try:
        stack.psql("INSERT INTO account (email, password_hash) VALUES ('before-newer@example.com', 'x')")
        result = pull(stack, heroku, "confirm=1", f"from=postgres://u:p@{newer}:5432/prod")
        there = docker("exec", newer, "postgres", "--version").stdout
    finally:
        docker("rm", "-f", "-v", newer, check=False)
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    here = stack.psql("SHOW server_version_num")[:-4]
    assert error.startswith(f"error: the source database runs Postgres {there.split()[-1].split('.')[0]}, ")
    assert f"the local server {here}: pg_restore cannot load a newer major" in error
    assert "in .postgres-version" in error
    assert stack.psql("SELECT count(*) FROM account WHERE email = 'before-newer@example.com'") == "1"


def test_without_the_heroku_cli_or_app_it_says_so(stack, heroku, tmp_path):
    no_cli = stack.make("db-pull", "confirm=1", PATH=path_without_heroku(), HEROKU_APP=APP)
    assert (
        "error: the Heroku CLI is not installed: see https://devcenter.heroku.com/articles/heroku-cli" in no_cli.stderr
    )
    logged_out = stack.make("db-pull", "confirm=1", PATH=stub_heroku(tmp_path, "#!/bin/sh\nexit 100\n"), HEROKU_APP=APP)
    assert "error: the Heroku CLI is not logged in: run heroku login" in logged_out.stderr
    other = {**{k: v for k, v in heroku.items() if k.isupper()}, "HEROKU_APP": "not-mine"}
    missing = stack.make("db-pull", "confirm=1", **other)
    # As the Heroku CLI says it today: the reason, not its trailing "Error ID" line.
    assert (
        "error: heroku config:get DATABASE_URL --app not-mine failed: Error: Couldn't find that app." in missing.stderr
    )


def test_a_failed_restore_leaves_the_local_database_as_it_was(stack, heroku):
    assert pull(stack, heroku, "confirm=1").returncode == 0
    stack.psql("INSERT INTO account (email, password_hash) VALUES ('kept@example.com', 'x')")
    # The scrub step fails on a database without the app's tables: the copy is dropped, nothing swapped.
    docker("exec", heroku["name"], "psql", "-U", "u", "-d", "prod", "-c", "CREATE DATABASE bare")
    result = pull(stack, heroku, "confirm=1", f"from={heroku['url'].rsplit('/', 1)[0]}/bare")
    assert result.returncode != 0
    assert "error: compose/db/scrub.sql failed, so nothing was replaced" in result.stderr
    assert stack.psql("SELECT count(*) FROM account WHERE email = 'kept@example.com'") == "1"
    assert "app__pulling" not in stack.psql("SELECT string_agg(datname, ',') FROM pg_database")


def test_a_restore_that_fails_says_its_error_not_the_line_of_context_after_it(stack, heroku):
    """A check calling a function that names a table without its schema fails under pg_restore's empty search_path."""
    setup = (
        "CREATE TABLE t (i int); INSERT INTO t VALUES (1);"
        " CREATE FUNCTION at_most_t() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM t';"
        " CREATE TABLE u (i int CHECK (i <= at_most_t())); INSERT INTO u VALUES (1);"
    )
    docker("exec", heroku["name"], "psql", "-U", "u", "-d", "prod", "-c", "CREATE DATABASE checked")
    docker("exec", heroku["name"], "psql", "-U", "u", "-d", "checked", "-v", "ON_ERROR_STOP=1", "-c", setup)
    result = pull(stack, heroku, "confirm=1", f"from={heroku['url'].rsplit('/', 1)[0]}/checked")
    assert result.returncode != 0
    [said] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert said.startswith("error: the pull failed and the local database is as it was: ")
    assert 'relation "t" does not exist' in said, said


def command_lines() -> list[str]:
    """Every process's command line on this machine, the database containers' included, as `ps` shows them."""
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout.splitlines()


def test_the_sources_password_is_on_no_command_line_while_it_is_pulled(stack, heroku):
    secret = f"pw-{uuid.uuid4().hex}"
    source_sql(heroku, f"CREATE ROLE puller LOGIN PASSWORD '{secret}' IN ROLE pg_read_all_data")
    url = f"postgres://puller:{secret}@{heroku['name']}:5432/prod"
    # A lock pg_dump waits for keeps the dump running for a while.
    held = "BEGIN; LOCK TABLE locations; SELECT pg_sleep(3); COMMIT"
    holder = subprocess.Popen(
        ["docker", "exec", heroku["name"], "psql", "-X", "-q", "-U", "u", "-d", "prod", "-c", held]
    )
    try:
        deadline = time.monotonic() + 30
        while source_sql(heroku, "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock'") == "0":
            assert holder.poll() is None and time.monotonic() < deadline, "the lock was never taken"
            time.sleep(0.05)
        with ThreadPoolExecutor(1) as pool:
            pulling = pool.submit(pull, stack, heroku, "confirm=1", f"from={url}")
            shown: set[str] = set()
            while not pulling.done():
                shown.update(line for line in command_lines() if "pg_dump" in line or secret in line)
                time.sleep(0.02)
            result = pulling.result()
    finally:
        holder.wait(30)
    assert result.returncode == 0, result.stdout + result.stderr
    if not any("pg_dump" in line for line in shown):
        pytest.skip("this machine's ps does not show the containers' processes (Docker Desktop, a remote engine)")
    assert not [line for line in shown if secret in line], f"the password was on a command line: {shown}"


def test_push_fills_an_empty_database_only_and_only_with_the_app_named(stack, heroku, tmp_path):
    env = {k: v for k, v in heroku.items() if k.isupper()}
    unconfirmed = stack.make("db-push", **env)
    assert unconfirmed.returncode != 0 and f"add confirm={APP}" in unconfirmed.stderr
    full = stack.make("db-push", f"confirm={APP}", **env)
    assert full.returncode != 0 and "is not empty" in full.stderr and "heroku pg:reset" in full.stderr
    docker("exec", heroku["name"], "psql", "-U", "u", "-d", "prod", "-c", "CREATE DATABASE fresh")
    Path(env["STUB_URL_FILE"]).write_text(heroku["url"].rsplit("/", 1)[0] + "/fresh")
    try:
        pushed = stack.make("db-push", f"confirm={APP}", **env)
    finally:
        Path(env["STUB_URL_FILE"]).write_text(heroku["url"])
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    there = docker("exec", heroku["name"], "psql", "-A", "-t", "-U", "u", "-d", "fresh", "-c",
                   "SELECT count(*) FROM locations").stdout.strip()  # fmt: skip
    assert there == stack.psql("SELECT count(*) FROM locations")


def ctrl_c_while_pg_dump_waits(
    stack: Stack, env: dict[str, str], lock_in: list[str], sessions: Callable[[str], str], *make_args: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run make ``make_args`` while ``lock_in`` (a psql command line) holds locations locked, so its copy's pg_dump
    waits with nothing written; press Ctrl-C once ``sessions`` (SQL -> answer on pg_dump's server) sees it. Return
    make's result and the SQL that counts the copy's sessions there (they carry its name, as make db-ps shows)."""
    held = "BEGIN; LOCK TABLE locations; SELECT pg_sleep(120); COMMIT"
    holder = subprocess.Popen(
        [*lock_in, "-c", held], cwd=stack.directory, env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    copying = f"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'make {make_args[0]} %'"
    try:
        locked = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted"
        assert poll(lambda: sessions(locked) != "0", 30), "the lock was never taken"
        making = stack.start_in_session(*make_args, **env)
        assert poll(lambda: sessions(copying) == "1", 30), "pg_dump never started"
        os.killpg(making.pid, signal.SIGINT)
        out, err = making.communicate(timeout=60)
    finally:
        sessions("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' "
                 "AND pid <> pg_backend_pid()")  # fmt: skip
        holder.wait(30)
    return subprocess.CompletedProcess(making.args, making.returncode, out, err), copying


def test_ctrl_c_stops_a_push_inside_the_db_container_too_and_the_target_stays_empty(stack, heroku):
    """docker compose exec leaves its command running when its client is interrupted: the push's pg_dump |
    pg_restore went on into the Heroku database after Ctrl-C, out of sight, once what held it up let go."""
    env = {k: v for k, v in heroku.items() if k.isupper()}
    docker("exec", heroku["name"], "psql", "-U", "u", "-d", "prod", "-c", "CREATE DATABASE stopped")
    Path(env["STUB_URL_FILE"]).write_text(heroku["url"].rsplit("/", 1)[0] + "/stopped")
    here = [*COMPOSE, "exec", "-T", "db", "psql", "-X", "-q", "-U", "app", "-d", "app"]
    try:
        stopped, copying = ctrl_c_while_pg_dump_waits(stack, env, here, stack.psql, "db-push", f"confirm={APP}")
    finally:
        Path(env["STUB_URL_FILE"]).write_text(heroku["url"])
    assert stopped.returncode != 0
    said = stopped.stderr
    assert "error: interrupted (Ctrl-C): the copy was stopped, here and in the target database" in said, said
    assert poll(lambda: stack.psql(copying) == "0", 5)
    time.sleep(2)  # the lock is gone: a copy still running would be filling the target now
    tables = docker("exec", heroku["name"], "psql", "-A", "-t", "-U", "u", "-d", "stopped", "-c",
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").stdout.strip()  # fmt: skip
    assert tables == "0", "nothing reached the target after Ctrl-C"


def test_ctrl_c_stops_a_pull_on_heroku_too_and_drops_the_copy_it_was_filling(stack, heroku):
    """The pull's pg_dump went on reading the Heroku database after Ctrl-C, and its copy stayed behind."""
    env = {k: v for k, v in heroku.items() if k.isupper()}
    there = ["docker", "exec", heroku["name"], "psql", "-X", "-q", "-U", "u", "-d", "prod"]
    before = stack.psql("SELECT count(*) FROM account")
    stopped, copying = ctrl_c_while_pg_dump_waits(stack, env, there, lambda sql: source_sql(heroku, sql),
                                                  "db-pull", "confirm=1")  # fmt: skip
    assert stopped.returncode != 0
    assert "error: interrupted (Ctrl-C): the local database is as it was" in stopped.stderr, stopped.stderr
    assert poll(lambda: source_sql(heroku, copying) == "0", 5), "its pg_dump still reads the Heroku database"
    assert stack.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '%__pulling'") == "0"
    assert stack.psql("SELECT count(*) FROM account") == before
