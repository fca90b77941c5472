"""The Compose stack and the make targets a user types, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from tests.support.docker import (
    APP_IMAGE,
    build_app_image,
    copy_project,
    docker,
    free_port,
    http_status,
    require_docker,
    unique,
)

pytestmark = pytest.mark.docker

PREVIOUS, HEAD = "b7d9e1f3a633", "e2a6c8d4f944"


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("needs docker compose or docker-compose")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Yield (directory, environment) for a private copy of the project and its own Compose stack."""
    require_docker()
    build_app_image()
    directory = copy_project(tmp_path_factory.mktemp("stack") / "project")
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": unique("t"),
        "APP_IMAGE": APP_IMAGE,
        "WEB_PORT": str(free_port()),
        "DB_PORT": str(free_port()),
    }
    env.pop("SECRET_KEY", None)
    env.pop("DATABASE_URL", None)
    yield directory, env
    subprocess.run([*compose_command(), "down", "-v", "--remove-orphans"], cwd=directory, env=env, capture_output=True)


def make(project, *targets: str) -> subprocess.CompletedProcess[str]:
    directory, env = project
    return subprocess.run(["make", *targets], cwd=directory, env=env, capture_output=True, text=True, timeout=600)


def api(port: str, method: str, path: str, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def ready(revision: str, head: str, *pending: tuple[str, str]) -> dict:
    """Return the /readyz body for a database at ``revision`` with code at ``head``."""
    listed = [{"revision": rev, "message": message} for rev, message in pending]
    return {"database": "ok", "revision": revision, "head": head, "pending": listed}


def test_make_up_downgrade_migrate_down(project):
    port = project[1]["WEB_PORT"]
    up = make(project, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"==> up: http://127.0.0.1:{port}" in up.stdout
    assert (project[0] / ".env").exists(), "make up creates .env from .env.example"

    status, account = api(port, "POST", "/accounts", {"email": "e2e@example.com", "password": "end-to-end"})
    assert status == 201
    status, saved = api(port, "POST", "/locations", {"name": "Home", "latitude": 1, "longitude": 2}, account["token"])
    assert status == 201

    down_one = make(project, "downgrade")
    assert down_one.returncode == 0, down_one.stdout + down_one.stderr
    assert api(port, "GET", "/readyz") == (503, ready(PREVIOUS, HEAD, (HEAD, "Add favorites table")))

    status_out = make(project, "status")
    assert status_out.returncode == 0, status_out.stderr
    assert f"pending  {HEAD}" in status_out.stdout and "Pending: 1" in status_out.stdout

    migrate = make(project, "migrate")
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert api(port, "GET", "/readyz") == (200, ready(HEAD, HEAD))
    assert api(port, "GET", "/locations", token=account["token"]) == (200, {"locations": [saved]})

    down = make(project, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert http_status(f"http://127.0.0.1:{port}/healthz") is None


NOTE_COLUMN = """    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)
"""


def test_first_migration_as_the_readme_walks_through_it(project):
    """Change a model, make revision, make migrate, make status, make downgrade."""
    directory, env = project
    assert make(project, "up").returncode == 0
    port = env["WEB_PORT"]
    assert make(project, "revision").returncode != 0, "a revision needs a message"

    models = directory / "app" / "models.py"
    original = models.read_text()
    marker = "    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())\n"
    location_block = original.index("class Location(Base):")
    at = original.index(marker, location_block)
    models.write_text(original[:at] + NOTE_COLUMN + original[at + len(marker) :])
    try:
        revision = make(project, "revision", "m=Add note to locations")
        assert revision.returncode == 0, revision.stdout + revision.stderr
        [path] = (directory / "alembic" / "versions").glob("*_add_note_to_locations.py")
        assert path.stat().st_uid == os.getuid()
        source = path.read_text()
        # Autogenerated, then formatted by ruff (double quotes) as make revision promises.
        assert 'op.add_column("locations", sa.Column("note", sa.Text(), nullable=True))' in source
        new_head = source.split("revision: str = ")[1].split("\n")[0].strip("'\"")

        migrate = make(project, "migrate")
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert api(port, "GET", "/readyz") == (200, ready(new_head, new_head))
        status = make(project, "status")
        assert f"applied  {new_head}" in status.stdout and "Pending: 0" in status.stdout

        assert make(project, "downgrade").returncode == 0
        assert api(port, "GET", "/readyz") == (503, ready(HEAD, new_head, (new_head, "Add note to locations")))
    finally:
        models.write_text(original)
        for leftover in (directory / "alembic" / "versions").glob("*_add_note_to_locations.py"):
            leftover.unlink()
        make(project, "up")
        make(project, "down")


def test_failing_release_keeps_web_from_starting(project):
    directory, env = project
    override = directory / "docker-compose.failing-release.yml"
    override.write_text(
        "services:\n"
        "  release:\n"
        "    environment:\n"
        "      DATABASE_URL: postgres://app:app@no-such-host:5432/app\n"
        "      RELEASE_DB_WAIT: '2'\n"
    )
    env = {**env, "COMPOSE_PROJECT_NAME": unique("tfail"), "SECRET_KEY": "x"}
    files = ["-f", "docker-compose.yml", "-f", override.name]
    try:
        result = subprocess.run(
            [*compose_command(), *files, "up", "-d", "--no-build", "web"],
            cwd=directory, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode != 0, result.stdout + result.stderr
        running_web = docker(
            "ps", "-q",
            "--filter", f"label=com.docker.compose.project={env['COMPOSE_PROJECT_NAME']}",
            "--filter", "label=com.docker.compose.service=web",
        ).stdout.strip()  # fmt: skip
        assert running_web == ""
    finally:
        subprocess.run([*compose_command(), *files, "down", "-v"], cwd=directory, env=env, capture_output=True)


def test_make_up_without_a_docker_engine_fails_with_one_line(project):
    directory, env = project
    result = subprocess.run(
        ["make", "up"], cwd=directory, env={**env, "DOCKER_HOST": "unix:///nonexistent.sock"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: the Docker engine is not running (docker info failed): start it, then retry"]
