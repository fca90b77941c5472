"""Procfile, heroku.yml, docker-compose.yml and the Dockerfile agree on process types."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import types

import pytest
import yaml

import dockerignore
import localstack
from app.config import load_settings
from app.migrations.history import PROJECT_ROOT
from devtools.docker import copy_project
from devtools.project import DEFAULT_POSTGRES_IMAGE, DEFAULT_PYTHON_IMAGE, DYNO_PORT, POSTGRES_MAJOR, PYTHON_VERSION
from tests.support.dyno import dyno_bin
from tests.support.scripts import bin_script
from tests.support.stack import compose_services, outside_make

# The project's own process types: the Makefile, Compose and heroku.yml run them. Yours may be added.
PROCESS_TYPES = {"web", "release", "migrate", "upgrade", "downgrade"}
ROUTER_CONFIG = PROJECT_ROOT / "compose" / "router" / "haproxy.cfg"


def proc_type(command) -> str:
    """Return the process type a ``bin/proc TYPE`` command runs, failing on anything else."""
    words = command if isinstance(command, list) else command.split()
    if len(words) == 1:
        words = words[0].split()
    assert words[0] == "bin/proc" and len(words) == 2, f"not a Procfile process type: {command!r}"
    return words[1]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_procfile_defines_the_projects_process_types():
    types = localstack.procfile()
    assert set(types) >= PROCESS_TYPES, "a process type of yours may be added, none of these taken away"
    assert types["web"].startswith("gunicorn ")
    # One-offs go through bin/oneoff: `honcho start` or `heroku local` without a name must not run them.
    assert types["release"] == "bin/oneoff python -m app.migrations release"
    assert types["migrate"] == "bin/oneoff alembic upgrade head"
    assert types["upgrade"] == "bin/oneoff alembic upgrade +1"
    assert types["downgrade"] == "bin/oneoff alembic downgrade -1"


def test_heroku_yml_runs_procfile_types():
    manifest = yaml.safe_load((PROJECT_ROOT / "heroku.yml").read_text())
    assert [addon["plan"] for addon in manifest["setup"]["addons"]] == ["heroku-postgresql"]
    assert manifest["build"]["docker"]["web"] == "Dockerfile"
    assert manifest["release"]["image"] == "web"
    assert proc_type(manifest["release"]["command"]) == "release"
    # A process type's entry is its command, or {command, image}.
    run = {name: proc_type(cmd["command"] if isinstance(cmd, dict) else cmd) for name, cmd in manifest["run"].items()}
    assert {name: kind for name, kind in run.items() if name != kind} == {}, "each runs the Procfile type it names"
    missing = sorted(set(localstack.dyno_types()) - set(run))
    assert not missing, (
        f"heroku.yml's run: lacks {', '.join(missing)}: on the container stack Heroku runs the process types "
        f"heroku.yml names, not the Procfile's, so add {missing[0]}: bin/proc {missing[0]} under run:"
    )
    assert set(run) <= set(localstack.dyno_types()), "heroku.yml runs a type the Procfile does not have as a dyno type"


def test_compose_runs_procfile_types():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert proc_type(services["release"]["command"]) == "release"
    assert proc_type(services["web"]["command"]) == "web"
    assert services["release"]["image"] == services["web"]["image"]
    assert services["release"]["depends_on"] == {"db": {"condition": "service_started"}}, "release waits itself"
    assert services["web"]["depends_on"] == {"release": {"condition": "service_completed_successfully"}}
    # Every dyno type, yours too, is the service of its name: make up starts those besides web.
    runs = {name: service["command"] for name, service in services.items()}
    missing = [kind for kind in localstack.dyno_types() if runs.get(kind) != ["bin/proc", kind]]
    assert not missing, (
        f"docker-compose.yml has no service {missing[0]} running bin/proc {missing[0]}: "
        "add one (README: A process type of your own)"
    )


def settings_read() -> set[str]:
    """Every variable the app and web read, as bin/doctor finds them."""
    read: set[str] = bin_script("doctor").settings_read()
    return read


# Set by Compose itself (the Compose database, the dyno's port and name), by make debug alone,
# or by make local alone (WEB_HOST: a dyno listens on every interface, whatever .env says).
COMPOSE_SETS = {"DATABASE_URL", "PORT", "DYNO", "LOCAL_STACK", "COMPOSE_PROJECT_NAME", "WEB_DEBUG", "WEB_HOST"}


@pytest.mark.docker
def test_every_setting_in_env_reaches_the_app_under_compose_as_a_config_var_reaches_every_dyno(tmp_path):
    """make local's honcho gives the processes all of .env; Compose gives them only what it names."""
    names = settings_read()
    assert {"DB_POOL_SIZE", "PROXY_HOPS", "GUNICORN_THREADS"} <= names
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}=from-env-file\n" for name in sorted(names)))
    env = {k: v for k, v in os.environ.items() if k not in names}
    services = compose_services(env, "--env-file", str(env_file))
    web, release = services["web"]["environment"], services["release"]["environment"]
    assert {n for n in names - COMPOSE_SETS if web.get(n) != "from-env-file"} == set(), "web"
    assert {n for n in names - COMPOSE_SETS - {"WEB_RELOAD"} if release.get(n) != "from-env-file"} == set(), "release"
    assert web["PORT"] == str(DYNO_PORT) and web["DATABASE_URL"].startswith("postgres://dyno:"), "Compose's own"


def test_one_postgres_major_for_compose_the_tests_ci_and_the_heroku_add_on():
    major = POSTGRES_MAJOR
    assert re.fullmatch(r"1[4-9]", major), "a major Heroku Postgres offers"
    [addon] = yaml.safe_load((PROJECT_ROOT / "heroku.yml").read_text())["setup"]["addons"]
    assert addon["options"]["version"] == major
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    defaults = re.findall(r"\$\{POSTGRES_IMAGE:-postgres:\$\{POSTGRES_MAJOR:-(\d+)\}\}", compose)
    assert defaults and set(defaults) == {major}, "Compose's default when make does not pass POSTGRES_MAJOR"
    assert f"postgres:{major}" == DEFAULT_POSTGRES_IMAGE
    assert "$(cat .postgres-version)" in (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "$(POSTGRES_MAJOR)" in (PROJECT_ROOT / "Makefile").read_text()


def test_one_python_version_for_the_image_ci_bench_and_the_readme():
    """.python-version is the one home; files that cannot read it (the Dockerfile, prose) must agree with it."""
    assert re.fullmatch(r"3\.\d+", PYTHON_VERSION)
    [default] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", (PROJECT_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert default == DEFAULT_PYTHON_IMAGE, "Heroku builds the Dockerfile with its default"
    assert "python:$(cat .python-version)-slim-bookworm" in (PROJECT_ROOT / ".ci" / "run").read_text()
    for path in (PROJECT_ROOT / "README.md", PROJECT_ROOT / "bench" / "bench.py", PROJECT_ROOT / "Makefile"):
        text = path.read_text()
        assert set(re.findall(r"python:(3\.\d+)", text)) <= {PYTHON_VERSION}, f"{path.name} names another Python"
        assert set(re.findall(r"postgres:(\d+)\b", text)) <= {POSTGRES_MAJOR}, f"{path.name} names another Postgres"


def test_web_is_reached_through_the_router_only():
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    assert "ports" not in services["web"]
    assert services["router"]["ports"] == [
        "127.0.0.1:${WEB_PORT:-5000}:${WEB_PORT:-5000}",
        "127.0.0.1:${WEB_TLS_PORT:-5443}:${WEB_TLS_PORT:-5443}",
    ], "the router listens inside on the port it is published on, so X-Forwarded-Port is right"
    assert services["web"]["environment"]["DYNO"] == "web" and services["release"]["environment"]["DYNO"] == "release.1"
    # The quota reaches the dyno (bin/proc logs R14 over it); its hard limit is Heroku's R15 point, twice that.
    assert services["web"]["environment"]["DYNO_MEMORY"] == "${DYNO_MEMORY:-512m}"
    assert services["web"]["mem_limit"] == services["web"]["memswap_limit"] == "${DYNO_MEMORY_LIMIT:-1024m}"


def test_compose_publishes_on_loopback_only():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_compose_sets_the_environment_heroku_sets():
    env = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["PORT"] == str(DYNO_PORT)
    assert "WEB_CONCURRENCY" in env


def test_a_dyno_listens_on_a_port_no_server_defaults_to_and_the_router_finds_it_there():
    """A web that ignores $PORT for a default of its own (Flask's 5000, gunicorn's 8000) fails here, as on Heroku."""
    assert DYNO_PORT not in (80, 3000, 5000, 8000, 8080, 8888)
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    assert services["router"]["environment"]["DYNO_PORT"] == str(DYNO_PORT)
    servers = re.findall(r"^\s*server web\.\d+ .*$", ROUTER_CONFIG.read_text(), re.M)
    assert servers and all(line.endswith(':${DYNO_PORT}"') for line in servers), "every dyno the router knows"


def test_the_dynos_compose_and_make_connect_as_the_role_db_makes_for_them():
    """One role, not the superuser: db's DYNO_ROLE, which owns the database as Heroku's credential does."""
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    role = services["db"]["environment"]["DYNO_ROLE"]
    assert role != services["db"]["environment"]["POSTGRES_USER"]
    assert services["web"]["environment"]["DATABASE_URL"].startswith(f"postgres://{role}:")
    show = ["-s", "--eval", "show: ; @echo $(HOST_DATABASE_URL)", "show"]
    shown = subprocess.run(["make", *show], cwd=PROJECT_ROOT, env=outside_make(os.environ), capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert shown.stdout.startswith(f"postgres://{role}:"), shown.stdout + shown.stderr


def test_the_router_has_a_server_line_for_each_dyno_make_scale_allows(tmp_path):
    """The lines are the limit's one home: web.N is the container <project>-web-N, and a line more is a dyno more."""
    pattern = r'^    server web\.(\d+) "\$\{COMPOSE_PROJECT_NAME\}-web-(\d+):\$\{DYNO_PORT\}"$'
    servers = re.findall(pattern, ROUTER_CONFIG.read_text(), re.M)
    most = len(servers)
    assert [(int(n), int(name)) for n, name in servers] == [(n, n) for n in range(1, most + 1)]

    copy = copy_project(tmp_path / "copy")

    def refusal(count: int) -> str:
        result = subprocess.run([sys.executable, "bin/dynos", "scale", f"web={count}"], cwd=copy,
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        assert result.returncode != 0
        return result.stderr.strip()

    assert refusal(most + 1) == f"error: say how many web dynos, 0 to {most}: make scale web=3 (got 'web={most + 1}')"
    config = copy / "compose" / "router" / "haproxy.cfg"
    last = f'    server web.{most} "${{COMPOSE_PROJECT_NAME}}-web-{most}:${{DYNO_PORT}}"\n'
    config.write_text(config.read_text().replace(last, last + last.replace(str(most), str(most + 1))))
    assert f"0 to {most + 1}:" in refusal(most + 2)


def test_dockerfile_starts_the_web_type_and_relies_on_nothing_heroku_ignores():
    instructions = dockerfile_instructions()
    cmds = [args for op, args in instructions if op == "CMD"]
    assert proc_type(json.loads(cmds[-1])) == "web"
    ignored = {"EXPOSE", "VOLUME", "HEALTHCHECK", "STOPSIGNAL"}
    assert not ignored & {op for op, _ in instructions}
    assert not (PROJECT_ROOT / "Dockerfile").read_text().startswith("# syntax")
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("ENV", "") not in instructions
    assert any(op == "ENV" and "PYTHONUNBUFFERED=1" in args for op, args in instructions)


def test_dockerfile_installs_dependencies_before_copying_the_source():
    ops = [(op, args) for op, args in dockerfile_instructions() if op in {"COPY", "RUN", "FROM"}]
    final = max(i for i, (op, _) in enumerate(ops) if op == "FROM")
    source_copy = next(i for i, (op, args) in enumerate(ops) if op == "COPY" and args.startswith(". "))
    install = next(i for i, (op, args) in enumerate(ops) if op == "RUN" and "pip install" in args)
    assert install < final < source_copy


def run_proc(tmp_path, procfile_text: str, *args: str, **env: str):
    proc = dyno_bin(tmp_path)
    (tmp_path / "Procfile").write_text(procfile_text)
    return subprocess.run(
        ["sh", str(proc), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd="/",
    )


def test_bin_proc_runs_the_procfile_line_with_variables_expanded(tmp_path):
    result = run_proc(tmp_path, "web: echo port=$PORT in $(pwd)\nother: echo no\n", "web", PORT="4321")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"port=4321 in {tmp_path}"


def test_bin_proc_execs_so_the_process_gets_signals_directly(tmp_path):
    # With `exec` at each step the command replaces the shell, so it keeps the
    # PID that bin/proc started with and is the one that receives SIGTERM.
    run_proc(tmp_path, "", "--help")  # lay out bin/proc and a Procfile
    (tmp_path / "Procfile").write_text('web: python3 -c "import os; print(os.getpid())"\n')
    proc = subprocess.Popen(["sh", str(tmp_path / "bin" / "proc"), "web"], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert int(out.strip()) == proc.pid


def test_bin_proc_refuses_an_unknown_type(tmp_path):
    result = run_proc(tmp_path, "web: true\n", "wbe")
    assert result.returncode == 2
    assert "no process type 'wbe'" in result.stderr
    result = run_proc(tmp_path, "web: true\n")
    assert result.returncode == 2 and "usage" in result.stderr


@pytest.mark.parametrize("workers", ["abc", "2.5", "0", "-1"])
def test_bin_proc_refuses_web_concurrency_gunicorn_would_crash_on_in_one_line(tmp_path, workers):
    """gunicorn parses WEB_CONCURRENCY as it is imported, before gunicorn.conf.py could say a word."""
    result = run_proc(tmp_path, "web: echo started\n", "web", WEB_CONCURRENCY=workers)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: WEB_CONCURRENCY must be a whole number of 1 or more, got '{workers}'\n"


@pytest.mark.parametrize("workers", ["3", " 3 ", ""])  # empty is unset: gunicorn.conf.py's default
def test_bin_proc_starts_web_with_a_whole_number_of_workers(tmp_path, workers):
    result = run_proc(tmp_path, "web: echo started\n", "web", WEB_CONCURRENCY=workers)
    assert (result.returncode, result.stdout) == (0, "started\n"), result.stderr


def test_release_timeout_means_nothing_outside_a_compose_release(tmp_path):
    """Heroku's limit is its own: a RELEASE_TIMEOUT set there (or under make local) must not fail the release."""
    result = run_proc(tmp_path, "release: echo released\n", "release", RELEASE_TIMEOUT="1h")
    assert (result.returncode, result.stdout, result.stderr) == (0, "released\n", "")


def load_gunicorn_config(**env: str):
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", PROJECT_ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    saved = dict(os.environ)
    try:
        for key in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "WEB_RELOAD", "WEB_DEBUG", "DB_STATEMENT_TIMEOUT"):
            os.environ.pop(key, None)
        os.environ.update(env)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


def test_gunicorn_config_follows_herokus_rules():
    conf = load_gunicorn_config()
    assert conf.bind == "0.0.0.0:5000"
    assert conf.workers == 2
    assert conf.worker_class == "gthread"
    assert conf.timeout < 30 and conf.graceful_timeout < 30
    assert conf.keepalive > 90
    # Under live reload none: a worker stopping for a reload would go on answering on the router's pooled
    # connections, a second or two of the old code after a save (test_reload times the rest).
    assert load_gunicorn_config(WEB_RELOAD="1").keepalive == 0
    assert conf.accesslog == "-"
    custom = load_gunicorn_config(PORT="8123", WEB_CONCURRENCY="5")
    assert (custom.bind, custom.workers) == ("0.0.0.0:8123", 5)


def test_web_statements_give_up_with_its_worker_and_a_debugger_statements_do_not():
    assert load_gunicorn_config().STATEMENT_TIMEOUT == "25s", "before the router's 30 s"
    assert load_gunicorn_config(WEB_DEBUG="1").STATEMENT_TIMEOUT == "0s"
    assert load_settings({"DATABASE_URL": "postgres://u@h/d"}).db_statement_timeout == "0", "one-offs: no limit"


def test_as_heroku_runs_it_the_app_is_preloaded_and_nothing_reloads():
    conf = load_gunicorn_config()
    assert conf.preload_app is True and conf.RELOAD is False
    for manifest in ("heroku.yml", "Dockerfile", "Procfile"):
        assert "WEB_RELOAD" not in (PROJECT_ROOT / manifest).read_text(), manifest


def test_compose_turns_reload_on_for_web_only_and_lets_the_user_turn_it_off():
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    assert services["web"]["environment"]["WEB_RELOAD"] == "${WEB_RELOAD:-1}"
    assert "WEB_RELOAD" not in services["release"]["environment"]
    conf = load_gunicorn_config(WEB_RELOAD="1")
    assert conf.RELOAD is True and conf.preload_app is False, "each worker imports the code afresh"
    assert conf.timeout == 25, "the dyno's limits still apply"
    watched = {rule["path"]: rule["action"] for rule in services["web"]["develop"]["watch"]}
    assert watched["./app"] == "sync" and watched["./alembic"] == "sync"
    assert watched["./requirements.txt"] == "rebuild" and watched["./Dockerfile"] == "rebuild"


def test_debug_mode_is_one_worker_one_thread_and_no_timeout():
    conf = load_gunicorn_config(WEB_DEBUG="1", WEB_RELOAD="1", WEB_CONCURRENCY="4")
    assert (conf.workers, conf.threads, conf.timeout) == (1, 1, 0)
    assert conf.graceful_timeout == 1, "Ctrl-C at the debugger's prompt ends it at once"
    assert conf.RELOAD is False, "a reload would end the debugging session"


class Said:
    """A logger that keeps what the watcher says."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def error(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    info = error


def test_live_reload_says_a_compile_error_once_and_restarts_once_it_compiles(tmp_path, monkeypatch):
    conf = load_gunicorn_config(WEB_RELOAD="1")
    monkeypatch.setattr(conf, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(conf, "WATCHED", (tmp_path / "app",))
    view = tmp_path / "app" / "view.py"
    view.parent.mkdir()
    # Each save has another size: a kernel may stamp writes milliseconds apart with the same time.
    view.write_text("answer = 1  # first\n")
    said, restarts = Said(), []
    watcher = conf.CodeWatcher(said, lambda: restarts.append(1), settle=0)

    view.write_text("answer = (\n")
    watcher.check()
    os.chmod(view, 0o600)  # what a sync may do after writing the bytes
    os.utime(view, (1, 1))
    watcher.check()
    error = "reload: app/view.py:1: SyntaxError: '(' was never closed; fix it and save"
    assert said.lines == [f"{error} (still serving the previous code)"], "said once, though the file changed twice"
    view.write_text("answer = [[\n")
    watcher.check()
    assert len(said.lines) == 2 and "'[' was never closed" in said.lines[1], "another error is said again"
    assert restarts == [], "the workers keep serving the previous code"

    view.write_text("answer = 2\n")
    watcher.check()
    assert said.lines[2] == "reload: app/view.py changed; restarting the workers" and restarts == [1]


def test_an_app_the_procfile_names_wrongly_is_blamed_on_the_procfile(tmp_path, monkeypatch):
    """Not on gunicorn.conf.py, whose hook only called gunicorn's import of it."""
    from gunicorn.util import import_app

    conf = load_gunicorn_config(WEB_RELOAD="1")
    monkeypatch.setattr(conf, "PROJECT_ROOT", tmp_path)  # gunicorn's own files are none of the project's
    worker = types.SimpleNamespace(log=Said(), load_wsgi=functools.partial(import_app, "app:create_ap()"))
    conf.survive_load_errors(worker)
    worker.load_wsgi()
    [line] = worker.log.lines
    assert line.startswith("reload: the app failed to load: Procfile (web's app): AppImportError: "), line


def test_gunicorn_accepts_the_config(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "--config", "gunicorn.conf.py", "app:create_app()"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": "postgres://u@127.0.0.1:9/d", "SECRET_KEY": "x"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", [".env", ".git", ".venv", "**/__pycache__", "tests"])
def test_dockerignore_keeps_secrets_and_clutter_out(path):
    entries = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert path in entries


def test_the_routers_and_the_databases_configuration_stay_out_of_the_app_image():
    """Compose mounts them: a change to the router's configuration rebuilds no web image and restarts no dyno."""
    rules = dockerignore.parse((PROJECT_ROOT / ".dockerignore").read_text())
    for path in sorted((PROJECT_ROOT / "compose").rglob("*")):
        if path.is_file():
            assert dockerignore.left_out(str(path.relative_to(PROJECT_ROOT)), rules), path
    assert not dockerignore.left_out("app/__init__.py", rules)


def test_env_is_ignored_by_git_and_has_an_example():
    assert re.search(r"^\.env$", (PROJECT_ROOT / ".gitignore").read_text(), re.M)
    example = (PROJECT_ROOT / ".env.example").read_text()
    for name in ("SECRET_KEY", "PORT", "WEB_CONCURRENCY"):
        assert re.search(rf"^{name}=", example, re.M), name


def test_pre_commit_runs_what_make_check_runs():
    """Each pre-commit hook is a command of `make check`, and `make check` has none pre-commit lacks."""
    config = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook["entry"].replace(" --force-exclude", "") for repo in config["repos"] for hook in repo["hooks"]]
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ncheck:") : makefile.index("\n\n", makefile.index("\ncheck:"))]
    in_make = {
        line.replace("$(BIN)/", ".venv/bin/") for line in re.findall(r"\$\(BIN\)/[\w-]+(?: [^|;]*?)?(?= \|\|)", recipe)
    }
    assert {hook.removesuffix(" .") for hook in hooks} == {command.removesuffix(" .") for command in in_make}


def test_each_port_has_one_default_wherever_it_is_written():
    """The host ports' defaults (.env.example, make local's PORT too) and web's port inside its container agree."""
    read = {name: (PROJECT_ROOT / name).read_text() for name in ("Makefile", "docker-compose.yml", "Dockerfile")}
    example = dict(
        line.split("=", 1) for line in (PROJECT_ROOT / ".env.example").read_text().splitlines() if "=" in line
    )
    for name in ("WEB_PORT", "WEB_TLS_PORT", "WEB_DIRECT_PORT", "DB_PORT", "PORT"):
        written = set(re.findall(rf"setting,{name},(\d+)\)", read["Makefile"]))
        written |= set(re.findall(rf"\$\{{{name}:-(\d+)\}}", read["docker-compose.yml"]))
        assert written <= {example[name]} and written, f"{name}: {written} vs .env.example's {example[name]}"
    assert "DATABASE_URL" not in example, "make local makes it from DB_PORT, the port's one home"
    assert "@127.0.0.1:$(DB_PORT)/app" in read["Makefile"]
    # The image's own $PORT when nothing sets one (docker run by hand): the Dockerfile's is gunicorn.conf.py's.
    [image_default] = re.findall(r"\bPORT=(\d+)", read["Dockerfile"])
    assert f"whole_number('PORT', {image_default})" in (PROJECT_ROOT / "gunicorn.conf.py").read_text()
    # A Compose dyno's is written once, in docker-compose.yml; make debug publishes it by name.
    assert re.findall(r'\bPORT: (?:&dyno-port )?"(\d+)"', read["docker-compose.yml"]) == [str(DYNO_PORT)]
    assert "$(WEB_DIRECT_PORT):$(DYNO_PORT)" in read["Makefile"]
    assert example["PORT"] != example["WEB_PORT"], "make local's web (PORT, on the host) beside make up's router"
