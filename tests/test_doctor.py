"""make doctor: one line per check, the fix beside each ✗, and a stub `heroku` standing in for Heroku."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import localstack
from app.migrations.history import PROJECT_ROOT
from devtools.docker import copy_project, docker, free_port, label_args
from devtools.project import POSTGRES_MAJOR, PYTHON_VERSION, postgres_image
from tests.support.docker import require_docker, shared_app_image
from tests.support.formation import OTHER_TYPES, WORKER, WORKER_SCALE, add_worker
from tests.support.heroku import path_without_heroku, stub_heroku

# Answers `heroku ARGS --app APP` from the JSON file in $STUB_HEROKU: {"auth:whoami": [status, stdout], ...}.
STUB = """#!/usr/bin/env python3
import json, os, sys
answers = json.load(open(os.environ["STUB_HEROKU"]))
args = [a for a in sys.argv[1:] if a not in ("--app", os.environ.get("STUB_APP", ""))]
status, out = answers.get(" ".join(args), [1, ""])
print(out, end="")
sys.exit(status)
"""


def formation(web: int, size: str) -> str:
    """Web's dynos and one of each of your own types, all of ``size``, in `heroku ps:scale`'s words."""
    return " ".join([f"web={web}:{size}", *(f"{kind}=1:{size}" for kind in OTHER_TYPES)])


# Your own types run one dyno each here too, whatever .env says.
YOURS = {localstack.scale_variable(kind): "1" for kind in OTHER_TYPES}


def agreeing(app: str) -> dict[str, list[object]]:
    """What a Heroku app that agrees with this project answers."""
    return {
        "auth:whoami": [0, "you@example.com\\n"],
        "apps:info --json": [0, json.dumps({"app": {"name": app, "stack": {"name": "container"}}})],
        "pg:info": [0, f"=== DATABASE_URL\\nPlan:        Essential 0\\nPG Version:  {POSTGRES_MAJOR}.4\\n"],
        "config --json": [0, json.dumps({"DATABASE_URL": "postgres://secret", "SECRET_KEY": "hidden"})],
        "ps:scale": [0, formation(1, "Standard-1X") + "\\n"],
    }


@pytest.fixture
def heroku_answers(tmp_path: Path) -> Iterator[Path]:
    """Yield the answers file of a `heroku` stub put first on PATH by ``doctor``."""
    stub_heroku(tmp_path / "bin", STUB)
    yield tmp_path / "answers.json"


def doctor(answers: Path | None = None, root: Path = PROJECT_ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    path = [str(answers.parent / "bin")] if answers else []
    path.append(path_without_heroku())
    ports = {"WEB_PORT": str(free_port()), "WEB_TLS_PORT": str(free_port()), "DB_PORT": str(free_port())}
    return subprocess.run(
        [sys.executable, str(root / "bin" / "doctor")], cwd=root,
        env={**os.environ, **YOURS, **ports, "PATH": os.pathsep.join(path), "STUB_HEROKU": str(answers or ""), **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def lines(result: subprocess.CompletedProcess[str], mark: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(mark)]


def test_without_the_heroku_cli_it_runs_the_local_checks_and_says_the_rest_was_skipped():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        result = doctor(DB_PORT=str(port))
    finally:
        busy.close()
    assert f"✗ port {port} (DB_PORT): in use by another program: stop it, or set DB_PORT= in .env" in result.stdout
    assert lines(result, "· Heroku checks skipped: the Heroku CLI is not installed")
    assert result.returncode == 1, "a failed check fails the command"
    assert result.stdout.splitlines()[-1].startswith("doctor: ")


def test_a_file_git_ignores_in_the_image_make_up_builds_fails_for_herokus_lacks_it(tmp_path):
    """A local settings file, or assets built on this machine: ignored by git, so never pushed, never built."""
    copy = copy_project(tmp_path / "project")
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    (copy / ".git" / "info" / "exclude").write_text("app/local_settings.py\n.coverage\n")
    (copy / "app" / "local_settings.py").write_text("DEBUG = True\n")
    (copy / ".coverage").write_text("")  # ignored by git and by .dockerignore: in neither image
    said = lines(doctor(root=copy), "✗ the image make up builds")
    assert said == [
        "✗ the image make up builds: 1 path(s) git ignores are in the image make up builds, so Heroku's (built from "
        "what git pushes) lacks them: app/local_settings.py: add them to .dockerignore, so that make up builds without "
        "them too, or commit them (git add -f)"
    ], said
    (copy / ".dockerignore").write_text((copy / ".dockerignore").read_text() + "app/local_settings.py\n")
    assert lines(doctor(root=copy), "✓ the image make up builds") == [
        "✓ the image make up builds holds no file git ignores, as Heroku's holds none"
    ]


def test_a_port_that_is_no_number_is_one_line_with_the_default_to_use():
    for value in ("abc", "²", "70000"):
        said = doctor(DB_PORT=value).stdout
        assert f"✗ DB_PORT={value}: not a port number: set DB_PORT to a free one, such as 5432" in said, said


@pytest.mark.docker
def test_a_port_another_checkouts_stack_holds_names_that_stack_and_where_to_stop_it(run_dir, tmp_path):
    """A second clone or worktree is the usual holder of the stack's ports: doctor (and so make up) names it."""
    require_docker()
    image = shared_app_image(run_dir)
    port = free_port()
    name = f"doctor-holder-{os.getpid()}"
    labels = {"com.docker.compose.project": "maps-review", "com.docker.compose.project.working_dir": str(tmp_path)}
    # Docker binds the host port itself (docker-proxy), listening or not inside: that is what a stack holds.
    held = ["run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8000", "--entrypoint", "sleep"]
    try:
        docker(*held, *label_args(labels), image, "120")
        said = doctor(DB_PORT=str(port)).stdout
        assert (
            f"✗ port {port} (DB_PORT): in use by {name}, of the Compose project maps-review ({tmp_path}): "
            "make down there, or set DB_PORT= in .env"
        ) in said, said
        docker("rm", "--force", name, check=False)
        docker(*held, image, "120")  # the same, started by hand: no project to go to
        said = doctor(DB_PORT=str(port)).stdout
        assert f"✗ port {port} (DB_PORT): in use by the container {name}: docker stop {name}, or set DB_PORT=" in said
    finally:
        docker("rm", "--force", name, check=False)


@pytest.mark.docker
def test_the_images_python_is_checked_against_python_version(run_dir):
    require_docker()
    image = shared_app_image(run_dir)
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    have = docker("run", "--rm", "--entrypoint", "python", image, "-c", probe).stdout.strip()
    result = doctor(APP_IMAGE=image)
    if have == PYTHON_VERSION:
        assert f"✓ the image runs Python {have}, as .python-version says" in result.stdout
    else:
        [line] = lines(result, f"✗ the image runs Python {have}, .python-version says {PYTHON_VERSION}")
        assert "unset PYTHON_IMAGE" in line


def test_the_databases_postgres_is_checked_against_postgres_version():
    """A stand-in, or a POSTGRES_IMAGE of another major, is said, as the image's Python is."""
    require_docker()
    image = postgres_image()
    if docker("image", "inspect", image).returncode != 0:
        pytest.skip(f"{image} is not here")
    have = docker("run", "--rm", "--entrypoint", "postgres", image, "--version").stdout.split(") ")[1].split(".")[0]
    result = doctor(POSTGRES_IMAGE=image)
    if have == POSTGRES_MAJOR:
        assert f"✓ the database runs PostgreSQL {have}, as .postgres-version says" in result.stdout
    else:
        [line] = lines(result, f"✗ the database runs PostgreSQL {have}, .postgres-version says {POSTGRES_MAJOR}")
        assert f"its image is {image}: unset POSTGRES_IMAGE" in line


def test_a_heroku_app_that_agrees_passes_every_heroku_check(heroku_answers):
    heroku_answers.write_text(json.dumps(agreeing("my-maps")))
    result = doctor(heroku_answers, HEROKU_APP="my-maps", STUB_APP="my-maps", WEB_SCALE="1", DYNO_SIZE="standard-1x")
    heroku = [line for line in result.stdout.splitlines() if "my-maps" in line]
    assert heroku == [
        "✓ my-maps runs on the container stack",
        f"✓ my-maps runs Postgres {POSTGRES_MAJOR}, locally {POSTGRES_MAJOR}",
        "✓ my-maps's config vars: app.json's are set, and each is one the project reads (2 set)",
        f"✓ my-maps runs {formation(1, 'standard-1x')}, locally {formation(1, 'standard-1x')}",
    ]
    assert "hidden" not in result.stdout + result.stderr, "config var values are never shown"


def test_each_disagreement_with_heroku_is_a_line_with_its_fix(heroku_answers):
    answers = agreeing("my-maps")
    answers["apps:info --json"] = [0, json.dumps({"app": {"name": "my-maps", "stack": {"name": "heroku-24"}}})]
    answers["pg:info"] = [0, "PG Version:  99.1\\n"]
    answers["config --json"] = [0, json.dumps({"DATABASE_URL": "x", "SENTRY_DSN": "y"})]
    answers["ps:scale"] = [0, formation(3, "Standard-2X") + "\\n"]
    heroku_answers.write_text(json.dumps(answers))
    result = doctor(heroku_answers, HEROKU_APP="my-maps", STUB_APP="my-maps", WEB_SCALE="1", DYNO_SIZE="standard-1x")
    failed = [line for line in lines(result, "✗") if "my-maps" in line]
    assert failed == [
        "✗ my-maps runs on the heroku-24 stack: heroku stack:set container (make heroku-deploy does)",
        f"✗ my-maps runs Postgres 99, locally {POSTGRES_MAJOR}: set .postgres-version to 99 and make db-upgrade",
        "✗ my-maps lacks SECRET_KEY: heroku config:set SECRET_KEY=... --app my-maps (app.json says why)",
        f"✗ my-maps runs {formation(3, 'standard-2x')}, locally {formation(1, 'standard-1x')}: make scale web=3"
        f"{''.join(f' {kind}=1' for kind in OTHER_TYPES)} DYNO_SIZE=standard-2x (and DYNO_SIZE=standard-2x in .env)",
    ]
    assert result.returncode == 1


def test_a_process_type_of_yours_is_compared_with_herokus_formation_too(heroku_answers, tmp_path):
    """Heroku starts a new type at 0 dynos; locally its service starts one: doctor says so, and how to match."""
    project = copy_project(tmp_path / "project")
    add_worker(project)
    answers = agreeing("my-maps")
    heroku_answers.write_text(json.dumps(answers))
    env = {"HEROKU_APP": "my-maps", "STUB_APP": "my-maps", "WEB_SCALE": "1", "DYNO_SIZE": "standard-1x"}
    result = doctor(heroku_answers, root=project, **env)
    here = formation(1, "standard-1x")
    assert [line for line in lines(result, "✗") if "formation" in line or " runs web=" in line] == [
        f"✗ my-maps runs {here} {WORKER}=0:standard-1x, locally {here} {WORKER}=1:standard-1x: "
        f"make scale web=1 {WORKER}=0 DYNO_SIZE=standard-1x (and DYNO_SIZE=standard-1x in .env)"
    ]
    answers["ps:scale"] = [0, f"{formation(1, 'Standard-1X')} {WORKER}=2:Standard-1X"]  # as heroku ps:scale prints it
    heroku_answers.write_text(json.dumps(answers))
    result = doctor(heroku_answers, root=project, **env, **{WORKER_SCALE: "2"})
    assert f"✓ my-maps runs {here} {WORKER}=2:standard-1x, locally {here} {WORKER}=2:standard-1x" in lines(result, "✓")


def test_only_config_vars_nothing_here_reads_are_unknown(heroku_answers):
    """The app's settings and gunicorn's (the README's Configuration table) are known; anything else is named."""
    answers = agreeing("my-maps")
    names = ["DATABASE_URL", "SECRET_KEY", "DB_POOL_SIZE", "GUNICORN_THREADS", "WEB_CONCURRENCY", "SENTRY_DSN"]
    answers["config --json"] = [0, json.dumps(dict.fromkeys(names, "x"))]
    heroku_answers.write_text(json.dumps(answers))
    result = doctor(heroku_answers, HEROKU_APP="my-maps", STUB_APP="my-maps", WEB_SCALE="1", DYNO_SIZE="standard-1x")
    assert lines(result, "✗ my-maps has") == [
        "✗ my-maps has SENTRY_DSN, which neither the app nor gunicorn.conf.py reads: add them to .env.example "
        "if something else does (or heroku config:unset them)"
    ]


def test_an_older_postgres_on_heroku_is_met_by_a_reset_or_an_upgrade_there(heroku_answers):
    answers = agreeing("my-maps")
    answers["pg:info"] = [0, "PG Version:  9.6\\n"]
    heroku_answers.write_text(json.dumps(answers))
    result = doctor(heroku_answers, HEROKU_APP="my-maps", STUB_APP="my-maps", WEB_SCALE="1", DYNO_SIZE="standard-1x")
    assert lines(result, "✗ my-maps runs Postgres 9,") == [
        f"✗ my-maps runs Postgres 9, locally {POSTGRES_MAJOR}: set .postgres-version to 9 and make db-reset, "
        "or upgrade my-maps's database (heroku pg:upgrade)"
    ]


def test_logged_out_or_without_an_app_says_how_to_go_on(heroku_answers):
    heroku_answers.write_text(json.dumps({"auth:whoami": [100, ""]}))
    assert "✗ Heroku CLI: the Heroku CLI is not logged in: run heroku login" in doctor(heroku_answers).stdout
    heroku_answers.write_text(json.dumps(agreeing("x")))
    result = doctor(heroku_answers, HEROKU_APP="", GIT_DIR=str(heroku_answers.parent / "no-git"))
    assert "· Heroku checks skipped: no Heroku app: set HEROKU_APP=name, or add the git remote heroku" in result.stdout
