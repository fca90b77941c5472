"""The Compose stack and the make targets a user types, end to end."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import select
import signal
import socket
import stat
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import localstack
from app.migrations.history import PROJECT_ROOT
from devtools.docker import docker, free_port
from devtools.http import http_status, poll
from devtools.project import postgres_image
from tests.support.formation import OTHER_TYPES, WORKER, WORKER_SCALE, add_worker
from tests.support.history import FIRST_COLUMN, FIRST_MESSAGE, FIRST_SLUG, after, head, with_first_column
from tests.support.stack import compose_services, project_stack
from watch_lock import lock_files

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with project_stack(tmp_path_factory.mktemp("compose")) as stack:
        yield stack


def ready(revision: str, code_head: str) -> dict:
    """Return the /readyz body for a database at ``revision`` with code at ``code_head``."""
    body = {"database": "ok", "revision": revision, "head": code_head}
    return {**body, "pending": [{"revision": rev, "message": message} for rev, message in after(revision)]}


def readyz(stack) -> tuple[int, dict]:
    status, body = stack.api("GET", "/readyz")
    body.pop("message", None)
    return status, body


def test_each_checkout_builds_and_runs_its_own_image(tmp_path):
    """Two checkouts (worktrees, clones of two branches) never serve each other's code."""
    env = {k: v for k, v in os.environ.items() if k not in ("APP_IMAGE", "COMPOSE_PROJECT_NAME")} | {"SECRET_KEY": "x"}
    images = set()
    for checkout in ("main-checkout", "feature-checkout"):
        (tmp_path / checkout).mkdir()
        config = subprocess.run(
            ["docker", "compose", "-f", str(PROJECT_ROOT / "docker-compose.yml"), "--project-directory",
             str(tmp_path / checkout), "config", "--format", "json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        services = json.loads(config.stdout)["services"]
        assert services["web"]["image"] == services["release"]["image"], "web and release run one image"
        images.add(services["web"]["image"])
    assert images == {"main-checkout-app", "feature-checkout-app"}


def test_a_migration_timeout_set_for_one_run_reaches_the_migration_containers(tmp_path):
    """make migrate MIGRATION_STATEMENT_TIMEOUT=10min, as the timeout's failure line advises; unset, none is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")} | {"SECRET_KEY": "x"}

    def environment(**extra: str) -> dict:
        return compose_services({**env, **extra}, directory=tmp_path)["release"]["environment"]

    assert environment().get("MIGRATION_STATEMENT_TIMEOUT") is None, "unset: app/config.py's default applies"
    assert environment(MIGRATION_STATEMENT_TIMEOUT="10min")["MIGRATION_STATEMENT_TIMEOUT"] == "10min"


def test_an_env_copied_by_hand_without_a_secret_key_says_how_to_make_one(tmp_path):
    """.env.example says to copy it; its SECRET_KEY= is empty, and make up writes a key only into a new .env."""
    (tmp_path / ".env").write_text((PROJECT_ROOT / ".env.example").read_text())
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    config = subprocess.run(
        ["docker", "compose", "-f", str(PROJECT_ROOT / "docker-compose.yml"), "--project-directory", str(tmp_path),
         "config"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert config.returncode != 0
    assert "SECRET_KEY is empty: make up writes one only into a new .env; put one in yours" in config.stderr


def test_the_readme_walkthrough_from_make_up_to_make_down(stack):
    """make up, use the API, change a model, make revision, migrate, status, downgrade, migrate, down."""
    original = stack.read("app/models.py")
    noted = with_first_column(original)  # skipped before make up if the sample's Location is gone
    up = stack.up()
    assert f"==> up: http://127.0.0.1:{stack.port}" in up.stdout
    assert (stack.directory / ".env").exists(), "make up creates .env from .env.example"
    assert readyz(stack) == (200, ready(head(), head()))
    status, account = stack.api("POST", "/accounts", {"email": "e2e@example.com", "password": "end-to-end"})
    assert status == 201
    status, saved = stack.api("POST", "/locations", {"name": "Home", "latitude": 1, "longitude": 2}, account["token"])
    assert status == 201
    assert stack.make("revision").returncode != 0, "a revision needs a message"
    # make run, as heroku run: a one-off dyno on the app's image and database; the $ is the dyno's shell's.
    ran = stack.make("run", 'cmd=echo "dyno $DYNO" $(shell touch made-here); python -m app.migrations status; exit 3')
    assert ran.returncode != 0 and "Error 3" in ran.stderr, "the command's own exit status"
    assert not (stack.directory / "made-here").exists(), "make expands nothing in it, here or in the environment"
    assert "\ndyno run.1\n" in ran.stdout and f"applied  {head()}" in ran.stdout, ran.stdout + ran.stderr
    nothing = stack.make("run")
    assert nothing.returncode != 0 and nothing.stderr.startswith("error: say what to run: make run cmd=")

    stack.write("app/models.py", noted)
    versions = stack.directory / "alembic" / "versions"
    try:
        revision = stack.make("revision", f"m={FIRST_MESSAGE}")
        assert revision.returncode == 0, revision.stdout + revision.stderr
        [path] = versions.glob(f"*_{FIRST_SLUG}.py")
        assert path.stat().st_uid == os.getuid()
        source = path.read_text()
        # Autogenerated, then formatted by ruff (double quotes) as make revision promises.
        assert f'op.add_column("locations", sa.Column("{FIRST_COLUMN}", sa.Text(), nullable=True))' in source
        new_head = source.split("revision: str = ")[1].split("\n")[0].strip("'\"")

        migrate = stack.make("migrate")
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert readyz(stack) == (200, {"database": "ok", "revision": new_head, "head": new_head, "pending": []})
        status = stack.make("status")
        assert f"applied  {new_head}" in status.stdout and "Pending: 0" in status.stdout

        down_one = stack.make("downgrade")
        assert down_one.returncode == 0, down_one.stdout + down_one.stderr
        status, body = readyz(stack)
        assert (status, body["revision"], body["head"]) == (503, head(), new_head)
        assert body["pending"] == [{"revision": new_head, "message": FIRST_MESSAGE}]
        status = stack.make("status")
        assert f"pending  {new_head}" in status.stdout and "Pending: 1" in status.stdout

        assert stack.make("migrate").returncode == 0
        assert readyz(stack)[0] == 200
        assert stack.api("GET", "/locations", token=account["token"]) == (200, {"locations": [saved]})
    finally:
        stack.write("app/models.py", original)
        for leftover in versions.glob(f"*_{FIRST_SLUG}.py"):
            leftover.unlink()
    down = stack.make("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert http_status(f"http://127.0.0.1:{stack.port}/healthz") is None
    assert lock_files(stack.name) == [], "live reload's watch left its lock file behind"
    # Each edit's rebuild left the image before it untagged: make down removes them.
    assert "older build(s) of this project's app image" in down.stdout, down.stdout
    left = docker("images", "--quiet", "--filter", "dangling=true", "--filter",
                  f"label=com.docker.compose.project={stack.name}").stdout  # fmt: skip
    assert left.strip() == ""


def test_with_live_reload_off_web_runs_its_image_and_only_a_migration_deploys_a_new_one(stack):
    """WEB_RELOAD=0 in .env: web as on Heroku. A snapshot waits for web and leaves it; make migrate deploys."""
    env_file, health = stack.directory / ".env", "app/health.py"
    assert stack.make(".env").returncode == 0, "the .env make up writes, whichever test ran first"
    settings, original = env_file.read_text(), stack.read(health)
    env_file.write_text(settings.replace("\nWEB_RELOAD=1\n", "\nWEB_RELOAD=0\n"))
    try:
        # From a database at this code's head, whatever revision the walkthrough left it at.
        reset = stack.make("db-reset", "confirm=1")
        assert reset.returncode == 0, reset.stdout + reset.stderr
        up = stack.up()
        assert "==> live reload is off (WEB_RELOAD=0)" in up.stdout
        web = stack.container_id()
        stack.write(health, original.replace('return {"status": "ok"}', 'return {"status": "deployed"}'))
        assert stack.make("image").returncode == 0, "the new code is built, not started"

        snapshot = stack.make("db-snapshot", "name=reload-off")
        assert snapshot.returncode == 0, snapshot.stdout + snapshot.stderr
        assert stack.container_id() == web, "a snapshot never deploys code"
        assert stack.api("GET", "/healthz") == (200, {"status": "ok"})

        migrate = stack.make("migrate")
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert stack.container_id() not in ("", web), "web runs the image the migration ran with"
        assert stack.api("GET", "/healthz") == (200, {"status": "deployed"})
        assert stack.api("GET", "/readyz")[0] == 200

        # WEB_RELOAD=1 in .env again (as after WEB_RELOAD=0 make up): web still runs without it.
        env_file.write_text(settings)
        watch = stack.make("watch")
        assert watch.returncode != 0 and "error: web was started without live reload" in watch.stderr, watch.stderr
        assert "live reload: off (web was started with WEB_RELOAD=0: make up turns it on)" in stack.make("ps").stdout
        migrate = stack.make("migrate")
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert "note: live reload is off" not in migrate.stdout, "nothing failed, and web is as it was started"
        shown = stack.make("ps").stdout
        assert "live reload: off (web was started with WEB_RELOAD=0: make up turns it on)" in shown, shown
    finally:
        env_file.write_text(settings)
        stack.write(health, original)
        stack.make("down")


def test_failing_release_keeps_web_from_starting(stack):
    override = stack.directory / "docker-compose.failing-release.yml"
    override.write_text(
        "services:\n"
        "  release:\n"
        "    environment:\n"
        "      DATABASE_URL: postgres://app:app@no-such-host:5432/app\n"
        "      RELEASE_DB_WAIT: '2'\n"
    )
    files = ["-f", "docker-compose.yml", "-f", override.name]
    assert stack.make(".env").returncode == 0, "the .env make up writes, whichever test ran first"
    assert stack.compose("down").returncode == 0
    try:
        result = stack.compose(*files, "up", "--detach", "--build", "web")
        assert result.returncode != 0, result.stdout + result.stderr
        assert stack.container_id("web") == "", "web did not start"
        assert "database host no-such-host is not running" in stack.logs("release"), result.stdout + result.stderr
    finally:
        stack.compose(*files, "down")
        override.unlink()


@pytest.mark.parametrize("reload", ["1", "0"])
def test_web_that_cannot_load_its_code_fails_make_up_at_once_with_what_it_said(stack, reload):
    """Not after the healthcheck's 60 s start period: make up waits for an answer through the router, and an
    error from the app itself (live reload's workers answer 500) or a web that exits ends the wait; so does
    a web that has not bound $PORT by its boot timeout."""
    health = "app/health.py"
    assert stack.make(".env").returncode == 0, "the .env make up writes, whichever test ran first"
    # From a database at this code's head, whatever revision the walkthrough left it at.
    reset = stack.make("db-reset", "confirm=1")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    original = stack.read(health)
    if reload == "1":  # Code that does not compile stops the image's build, as it stops Heroku's.
        stack.write(health, original + "\ndef broken(:\n")
        try:
            up = stack.make("up", WEB_RELOAD=reload)
        finally:
            stack.write(health, original)
        assert up.returncode != 0, up.stdout + up.stderr
        said = up.stdout + up.stderr  # BuildKit's summary of the failed step names the file and line
        assert f'File "{health}", line' in said and "SyntaxError" in said, said
        assert "error: the app image did not build" in up.stderr, up.stderr
    stack.write(health, original + '\nraise RuntimeError("the view module cannot load")\n')
    # Each make up builds the image anew (the code changed): on a loaded machine that takes a while, but
    # giving up takes far less than the healthcheck's 60 s start period.
    try:
        started = time.monotonic()
        up = stack.make("up", WEB_RELOAD=reload)
        took = time.monotonic() - started
        assert up.returncode != 0, up.stdout + up.stderr
        assert "error: web did not become healthy; what it said:" in up.stderr, up.stderr
        assert "the view module cannot load" in up.stderr, "web's own words follow"
        assert took < 45, f"make up took {took:.0f} s to give up"
    finally:
        stack.write(health, original)
    # An app slower to load than Heroku's boot timeout: the dyno stops itself, as Heroku stops it (R10).
    stack.write(health, original + "\nimport time\n\ntime.sleep(35)\n")
    try:
        started = time.monotonic()
        up = stack.make("up", WEB_RELOAD=reload, WEB_BOOT_TIMEOUT="3")
        took = time.monotonic() - started
        assert up.returncode != 0, up.stdout + up.stderr
        r10 = "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 3 seconds of launch: "
        assert r10 in up.stderr, up.stderr
        assert took < 45, f"make up took {took:.0f} s to give up"
        if reload == "0":  # within Heroku's 60 s, as Heroku runs it: make up waits past its usual 30 s
            slow = stack.make("up", WEB_RELOAD=reload)
            assert slow.returncode == 0, slow.stdout + slow.stderr
            assert "==> web is not serving yet after 10 s; waiting while it starts" in slow.stdout
    finally:
        stack.write(health, original)
    if reload == "1":  # A Procfile line that binds Flask's 5000 itself, not $PORT: R10 here, as on Heroku.
        procfile = stack.read("Procfile")
        stack.write("Procfile", procfile.replace(" --config gunicorn.conf.py ", " --config gunicorn.conf.py -b :5000 "))
        try:  # Time enough to boot on a busy machine: the line then says where web is instead.
            up = stack.make("up", WEB_RELOAD=reload, WEB_BOOT_TIMEOUT="10")
            assert up.returncode != 0, up.stdout + up.stderr
            assert "seconds of launch: Heroku stops such a dyno with SIGKILL; web is up, but not on $PORT" in up.stderr
        finally:
            stack.write("Procfile", procfile)
    assert stack.make("up", WEB_RELOAD=reload).returncode == 0, "the next make up serves the fixed code"
    assert stack.api("GET", "/healthz") == (200, {"status": "ok"})
    stack.make("down")


def test_make_up_without_a_docker_engine_fails_with_one_line(stack):
    result = stack.make("up", DOCKER_HOST="unix:///nonexistent.sock")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: the Docker engine is not running (docker version found no server): start it, then retry"]


def test_make_up_with_a_port_taken_by_another_program_says_which_and_the_way_out(stack):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = stack.make("up", WEB_PORT=str(port))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: port {port} (WEB_PORT): in use by another program: stop it, or set WEB_PORT= in .env"]
    # The router's container was made but never started: make ps says so (not "crashed" in year 1).
    ps = stack.make("ps").stdout
    assert re.search(r"^router\.1: down \(never started\) 20\d\d/", ps, re.M), ps


def test_scale_needs_a_running_stack_and_up_at_zero_dynos_says_so(stack):
    assert stack.make("down").returncode == 0
    logs = stack.make("logs")
    assert logs.returncode == 0 and "==> the stack is down: no logs to follow (make up starts it)" in logs.stdout
    assert "watch    |" not in logs.stdout, "nor live reload's old lines"
    scaled = stack.make("scale", "web=2")
    assert scaled.returncode != 0
    errors = [line for line in scaled.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: the stack is not up, so there is nothing to scale: make up, then make scale web=2"]
    restarted = stack.make("restart")
    assert restarted.returncode != 0
    assert restarted.stderr.startswith("error: the stack is not up, so there is nothing to restart: make up\n")
    assert stack.container_id("web") == "", "no dyno was started without its database and router"

    none = {localstack.scale_variable(kind): "0" for kind in localstack.dyno_types()}  # yours too, if any
    up = stack.make("up", **none)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "==> web is scaled to 0 (WEB_SCALE=0 in .env)" in up.stdout
        assert stack.status("/healthz") == 503, "the router answers for the missing dynos"
        restarted = stack.make("restart")
        assert restarted.returncode != 0
        assert restarted.stderr.startswith("error: no dynos run, so there is nothing to restart: make scale web=1 ")
    finally:
        stack.make("down")


def test_a_process_type_of_yours_runs_as_dynos_that_make_up_starts_make_scale_scales_and_make_ps_lists(stack):
    """The README's three places for a worker: make up starts it, each dyno is named worker.N, as on Heroku."""
    originals = add_worker(stack.directory)
    try:
        up = stack.up()
        others = " ".join([*OTHER_TYPES, WORKER])
        assert f"==> starting {others}\n" in up.stdout
        assert poll(lambda: f"worker up as {WORKER}.1" in stack.logs(WORKER), 30), stack.logs(WORKER)

        # Beside another command-line variable whose value has spaces (make splits those at them).
        scaled = stack.make("scale", f"{WORKER}=2", "COMPOSE_PLUGIN_NOTE=a path with spaces")
        assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        assert f"==> now running {WORKER} at 2:" in scaled.stdout and f"{WORKER_SCALE}=2" in stack.read(".env")
        assert poll(lambda: f"worker up as {WORKER}.2" in stack.logs(WORKER), 30), stack.logs(WORKER)
        ps = stack.make("ps").stdout
        assert re.search(
            rf"^=== {WORKER} \(\S+\): bin/proc {WORKER} \(2\)\n{WORKER}\.1: up .*of \d+ MB\n{WORKER}\.2: up ", ps, re.M
        ), ps
        assert stack.up().returncode == 0 and len(stack.container_id(WORKER).split()) == 2, "make up keeps the count"

        # make restart, as heroku ps:restart: every dyno of every type, each in a new container.
        before = set(stack.container_id(WORKER).split()) | {stack.container_id("web")}
        restarted = stack.make("restart")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert "==> restarted web.1\n" in restarted.stdout
        assert f"==> restarted {WORKER}.1, {WORKER}.2\n" in restarted.stdout
        after = set(stack.container_id(WORKER).split()) | {stack.container_id("web")}
        assert len(after) == 3 and not after & before, (before, after)
        assert stack.status("/healthz") == 200, "make restart returns once web serves through the router"

        port = str(free_port())
        said = serving_locally(stack, port).output
        assert f"==> web on http://127.0.0.1:{port}, and {others} (honcho start web {others};" in said, said
        assert "worker up as no dyno" in said, "honcho runs it on the host beside web"

        wrong = stack.make("scale", "wrker=2")
        assert wrong.returncode != 0
        types = ", ".join(["web", *OTHER_TYPES, WORKER])
        assert f"error: no dyno type wrker in the Procfile; its dyno types are {types}" in wrong.stderr

        stack.write("docker-compose.yml", originals["docker-compose.yml"])
        up = stack.make("up")
        assert up.returncode != 0
        missing = f"error: the Procfile's {WORKER} runs as a dyno, but docker-compose.yml has no service {WORKER}"
        assert missing in up.stderr

        # Taken out of all three places: make up stops its dynos, as a deploy scales a type that is gone to 0.
        # A service of yours that is no dyno stays, even under a profile `config --services` does not list.
        for name, text in originals.items():
            stack.write(name, text)
        cache = f"  cache:\n    image: {postgres_image()}\n    profiles: [cache]\n    entrypoint: [sleep, '300']\n"
        stack.write(
            "docker-compose.yml", originals["docker-compose.yml"].replace("\nservices:\n", f"\nservices:\n{cache}", 1)
        )
        assert stack.compose("--profile", "cache", "up", "--detach", "cache").returncode == 0
        up = stack.make("up")
        assert up.returncode == 0, up.stdout + up.stderr
        for n in (1, 2):
            assert f"==> stopping {WORKER}.{n}: its type is gone from docker-compose.yml\n" in up.stdout, up.stdout
        labels = [f"label=com.docker.compose.{key}" for key in (f"project={stack.name}", f"service={WORKER}")]
        assert docker("ps", "--all", "--quiet", "--filter", labels[0], "--filter", labels[1]).stdout == ""
        assert (
            "stopping cache" not in up.stdout and stack.compose("--profile", "cache", "ps", "--quiet", "cache").stdout
        )
    finally:
        for name, text in originals.items():
            stack.write(name, text)
        docker("rm", "--force", f"{stack.name}-cache-1", check=False)
        stack.make("down")


def test_a_debug_dyno_left_running_is_named_by_make_up_and_removed_by_make_down(stack):
    """make debug's dyno outlives a closed terminal: make up says so, make down clears it."""
    assert stack.make(".env").returncode == 0
    project = stack.env["COMPOSE_PROJECT_NAME"]
    left = stack.compose("run", "--detach", "--no-deps", "--name", f"{project}-web-1", "web", "bin/proc", "web")
    assert left.returncode == 0, left.stderr
    try:
        up = stack.make("up")
        assert up.returncode != 0
        assert (
            "error: the dyno a make debug ran is still there (its terminal closed?): make down removes it" in up.stderr
        )
        ps = stack.make("ps").stdout
        assert re.search(r"^=== run: one-off processes \(1\)\nrun\.1: up .*: bin/proc web \(", ps, re.M), ps
        assert stack.make("down").returncode == 0
        assert f"{project}-web-1" not in docker("ps", "--all", "--format", "{{.Names}}").stdout
        stack.up()
    finally:
        stack.make("down")


def docker_without_compose(directory, version: str | None) -> str:
    """Put a `docker` on a PATH of its own that answers `compose version` as ``version`` (None: no plugin)."""
    real = subprocess.run(["sh", "-c", "command -v docker"], capture_output=True, text=True).stdout.strip()
    fake = directory / "docker"
    answer = (
        f'echo "{version}"; exit 0' if version else "echo \"docker: 'compose' is not a docker command.\" >&2; exit 1"
    )
    fake.write_text(f'#!/bin/sh\n[ "$1" = compose ] && {{ {answer}; }}\nexec {real} "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.parametrize(
    ("version", "says"),
    [
        (None, "error: Docker Compose v2 is not installed (docker compose version failed): install the Compose plugin"),
        ("v2.20.3", "error: Docker Compose 2.20.3 is too old; 2.22 or newer is needed"),
    ],
)
def test_docker_targets_without_compose_v2_fail_with_one_line_saying_what_to_install(stack, tmp_path, version, says):
    path = docker_without_compose(tmp_path, version)
    for target in ("up", "migrate", "status", "db-reset"):
        result = stack.make(target, PATH=path, COMPOSE_PLUGIN="")  # through the docker CLI, not the plugin itself
        assert result.returncode != 0, target
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(says), (target, result.stderr)
        assert "https://docs.docker.com/compose/install/" in errors[0]


def listening_addresses(port: int) -> set[str]:
    """Return the IPv4 and IPv6 addresses a socket listens on at ``port`` on this machine (from /proc/net)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # LISTEN
                packed = bytes.fromhex(address)
                # /proc/net writes each 32-bit word in the host's byte order (little-endian here).
                words = b"".join(packed[i : i + 4][::-1] for i in range(0, len(packed), 4))
                addresses.add(str(ipaddress.ip_address(words)))
    return addresses


@dataclass
class Served:
    output: str  # what make local printed until Ctrl-C
    addresses: set[str]


def serving_locally(stack, port: str, look: Callable[[], set[str]] = set) -> Served:
    """Run make local on ``port`` until its web answers /healthz, ``look()`` then, and Ctrl-C; return what it said."""
    local = subprocess.Popen(
        ["make", "local"], cwd=stack.directory, env={**stack.env, "PORT": port, "WEB_RELOAD": "0"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal would
    )  # fmt: skip
    try:
        assert poll(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200, 60), "web on the host, on PORT"
        addresses = look()
    finally:
        os.killpg(local.pid, signal.SIGINT)
        output, _ = local.communicate(timeout=60)
    return Served(output, addresses)


def test_make_local_serves_on_its_own_port_which_the_environment_sets(stack):
    """Beside the stack: a port the stack publishes is refused at once; PORT=... wins over .env."""
    taken = stack.make("local", PORT=stack.env["DB_PORT"])
    assert taken.returncode != 0
    assert f"error: port {stack.env['DB_PORT']} (PORT): make up's stack publishes it: set PORT=" in taken.stderr

    port = str(free_port())
    served = serving_locally(stack, port, lambda: listening_addresses(int(port)))
    assert served.addresses == {"127.0.0.1"}, "this machine only, as the stack's published ports"
    assert re.search(rf"==> web on http://127\.0\.0\.1:{port}[ ,]", served.output), served.output
    assert "reload: watching" not in served.output, "WEB_RELOAD=0 wins over .env's 1, as with make up"

    # A release that fails (a database at another branch's revision) starts no web, and says so.
    at = stack.psql("SELECT version_num FROM alembic_version")
    stack.psql("UPDATE alembic_version SET version_num = 'feedfacecafe'")
    try:
        ahead = stack.make("local", PORT=str(free_port()))
    finally:
        stack.psql(f"UPDATE alembic_version SET version_num = '{at}'")
    assert ahead.returncode != 0 and "feedfacecafe" in ahead.stdout + ahead.stderr
    assert "error: the release process failed (above), so web was not started (as on Heroku)" in ahead.stderr


def in_a_terminal() -> None:
    """Make the child's stdin (a pty) its controlling terminal, with the signals a terminal's process has."""
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.parametrize("ending", ["ctrl-c", "terminal closed"])
def test_make_local_stops_its_web_on_ctrl_c_and_when_its_terminal_closes(stack, ending):
    """honcho alone dies of SIGHUP and leaves gunicorn on PORT; Ctrl-C and a closed window both stop web."""
    port = str(free_port())
    url = f"http://127.0.0.1:{port}/healthz"
    terminal, child = os.openpty()
    # A shell leads the terminal's session, as in a window: when the window closes, the
    # kernel hangs up the shell, then the job it runs in the foreground.
    local = subprocess.Popen(
        ["bash", "-c", "make local; exit $?"], cwd=stack.directory, env={**stack.env, "PORT": port}, stdin=child,
        stdout=child, stderr=child, start_new_session=True, preexec_fn=in_a_terminal,
    )  # fmt: skip
    os.close(child)
    said = bytearray()

    def serving() -> bool:
        while select.select([terminal], [], [], 0)[0]:  # keep reading, as a terminal does
            try:
                said.extend(os.read(terminal, 65536))
            except OSError:
                break
        return http_status(url) == 200

    try:
        assert poll(serving, 60), said.decode(errors="replace")
        if ending == "ctrl-c":
            os.write(terminal, b"\x03")
            assert poll(lambda: not serving() and local.poll() is not None, 30), said.decode(errors="replace")
            assert "SIGINT received" in said.decode(errors="replace")
    finally:
        os.close(terminal)  # the window closes: SIGHUP
        local.wait(timeout=60)
    assert poll(lambda: http_status(url) is None, 30), "web stopped with its terminal"


def test_make_up_and_down_at_once_take_turns_and_leave_one_live_reload(stack):
    """A second terminal's make up waits for the first; they used to race over live reload's watcher.

    Next to last in this module: it leaves the stack down, which make clean's test (last) does not mind.
    """
    first = stack.start("up")
    assert poll(lambda: stack.has_the_turn(first, "up"), 30), "the first's turn"
    second = stack.make("up")
    said, _ = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, said + second.stdout + second.stderr
    assert f"==> a make up of this checkout is running (pid {first.pid}): make up waits for it" in second.stdout
    watcher = (stack.directory / ".run" / "watch.pid").read_text().strip()
    assert watcher.isdecimal(), watcher
    assert f"live reload: on (pid {watcher}," in stack.make("ps").stdout

    # make down in another terminal waits too, then stops all that make up started, live reload included.
    starting = stack.start("up")
    assert poll(lambda: stack.has_the_turn(starting, "up"), 30)
    down = stack.make("down")
    said, _ = starting.communicate(timeout=300)
    assert starting.returncode == 0 and down.returncode == 0, said + down.stdout + down.stderr
    assert f"==> a make up of this checkout is running (pid {starting.pid}): make down waits" in down.stdout
    assert stack.compose("ps", "--all", "--quiet").stdout.strip() == ""
    assert "live reload: off (web is not running)" in stack.make("ps").stdout
    watch = stack.make("watch")
    assert watch.returncode != 0, "a watcher with nothing to copy into would say live reload is on"
    assert "error: web is not running, so live reload would have nothing to copy into: make up" in watch.stderr
    assert "live reload: off (web is not running)" in stack.make("ps").stdout


def test_make_clean_removes_the_containers_the_volume_and_the_app_images_but_no_base_image(stack):
    """Last in this module: the stack is gone afterwards. The official images stay (no pull needed again)."""
    project = stack.env["COMPOSE_PROJECT_NAME"]
    assert stack.make("image").returncode == 0
    assert stack.compose("create", "db").returncode == 0
    built = ("image", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={project}")
    assert docker(*built).stdout.strip(), "make image built the app image"

    # VENV: the copy's own, not the suite's virtualenv that Stack lends it.
    clean = stack.make("clean", VENV=".venv")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"==> removing the app images Compose built for {project}" in clean.stdout
    assert docker(*built).stdout.strip() == ""
    assert f"{project}_pgdata" not in docker("volume", "ls", "--quiet").stdout.split()
    assert docker("image", "inspect", postgres_image(), check=False).returncode == 0, "the base image is kept"
