"""The make targets users type: listed by `make help`, and clear when a tool is missing."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

import dockerignore
from app.migrations.history import PROJECT_ROOT
from devtools.docker import copy_project, docker, label_args, unique
from devtools.project import postgres_image, python_image
from localstack import compose_command
from tests.support.docker import require_docker
from tests.support.heroku import path_without_heroku, stub_heroku
from tests.support.stack import outside_make

TARGETS = [
    "up", "down", "logs", "ps", "scale", "restart", "migrate", "upgrade", "downgrade", "revision", "status", "psql",
    "shell", "run", "debug", "db-reset", "db-snapshot", "db-restore", "db-snapshots", "db-snapshot-rm", "db-ps",
    "db-kill", "local", "heroku-create", "heroku-deploy", "heroku-migrate", "test", "test-quick", "check", "bench",
    "clean",
]  # fmt: skip


def make(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run make in the project, as a user would: not as a sub-make of make test (no make[1] lines, no -j)."""
    env = outside_make(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["make", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_help_lists_every_target_with_a_description():
    listed = dict(re.findall(r"^  (\S+)\s+(.+)$", make("help").stdout, re.M))
    for target in TARGETS:
        assert listed.get(target), f"make help does not describe {target}"


def test_every_make_command_the_readme_names_is_a_target():
    """A target renamed or removed leaves no `make ...` in the README that make does not know."""
    named = set(re.findall(r"`make ([a-z][a-z0-9-]*)(?![\w*-])", (PROJECT_ROOT / "README.md").read_text()))
    helped = set(re.findall(r"^  (\S+)\s", make("help").stdout, re.M)) | {"help"}
    assert named and not named - helped, named - helped


def heroku_cli(directory: Path, logged_in: bool) -> str:
    """Put a fake heroku CLI, logged in or not, first on PATH; return that PATH."""
    status = 0 if logged_in else 1
    return stub_heroku(directory / "bin", f'#!/bin/sh\n[ "$1" = auth:whoami ] && exit {status}\necho "heroku $*"\n')


def test_the_readmes_list_of_targets_is_make_helps():
    """The README shows make help's own lines: a target added or reworded there shows here, or this fails."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    listed = readme.split("## Make targets\n\n```text\n", 1)[1].split("```", 1)[0].splitlines()
    helped = [line for line in make("help").stdout.splitlines() if line.startswith("  ") and "  help " not in line]
    assert listed == helped


def test_heroku_targets_say_when_the_cli_is_missing(tmp_path):
    for target in ("heroku-create name=my-maps", "heroku-deploy", "heroku-migrate"):
        result = make(*target.split(), path=path_without_heroku())
        assert result.returncode != 0
        assert "error: the Heroku CLI is not installed" in result.stderr


def test_heroku_targets_say_when_the_cli_is_not_logged_in(tmp_path):
    result = make("heroku-migrate", path=heroku_cli(tmp_path, logged_in=False))
    assert result.returncode != 0
    assert "error: the Heroku CLI is not logged in: run heroku login" in result.stderr


def test_heroku_create_asks_for_the_container_stack_postgres_at_the_projects_major_and_a_secret_key(tmp_path):
    calls = tmp_path / "calls"
    path = stub_heroku(tmp_path / "bin", f'#!/bin/sh\necho "$*" >> {calls}\necho "heroku $*"\n')
    for name in ("", 'a"b', "My_Maps", "my-maps-"):
        refused = make("heroku-create", f"name={name}", path=path)
        assert refused.stderr.startswith("error: name the app as Heroku names apps"), (name, refused.stderr)
    assert not calls.exists(), "nothing was asked of Heroku"
    result = make("heroku-create", "name=my-maps", path=path)
    assert result.returncode == 0, result.stderr
    major = (PROJECT_ROOT / ".postgres-version").read_text().strip()
    whoami, create, addon, config = calls.read_text().splitlines()
    assert (whoami, create) == ("auth:whoami", "create my-maps --stack container")
    # Options for the add-on after "--", as Heroku's CLI asks since v9 (the old form is deprecated).
    # --wait: a first deploy's release needs DATABASE_URL, which the add-on sets once provisioned.
    assert addon == f"addons:create heroku-postgresql --app my-maps --wait -- --version={major}"
    assert re.fullmatch(r"config:set --app my-maps SECRET_KEY=[0-9a-f]{64}", config), config
    assert config.split("=", 1)[1] not in result.stdout + result.stderr, "the key is never printed"
    assert result.stdout.rstrip().splitlines()[-1].startswith("==> my-maps is ready"), result.stdout


def test_heroku_migrate_runs_the_migrate_process_type(tmp_path):
    result = make("heroku-migrate", "HEROKU_APP=my-maps", path=heroku_cli(tmp_path, logged_in=True))
    assert result.returncode == 0, result.stderr
    # --exit-code: without it, heroku run exits 0 whatever the migration did.
    assert "heroku run --exit-code --app my-maps -- bin/proc migrate" in result.stdout


GIT = ["git", "-c", "user.name=Suite", "-c", "user.email=suite@example.com"]
GIT_ALONE = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # no signing, no hooks


def committed_copy(directory: Path) -> Path:
    """Copy the project's files as they are now into a git repository of their own, all committed."""
    copy = copy_project(directory / "project")
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "the project as it is"]):
        subprocess.run([*GIT, *step], cwd=copy, env=GIT_ALONE, check=True, capture_output=True)
    return copy


def test_heroku_deploy_pushes_the_commit_to_the_app_it_set_the_stack_of_and_only_a_clean_one(tmp_path):
    """HEROKU_APP names the app for stack:set and for the push, whatever a git remote says.

    Heroku builds the pushed commit, `make up` the files as they are: a file
    left out of the commit would serve locally and be missing on Heroku, so
    the deploy refuses until the checkout is its commit.
    """
    copy = committed_copy(tmp_path)
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "git" / "my-maps.git")], check=True)
    path = heroku_cli(tmp_path, logged_in=True)
    redirect = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{tmp_path / 'git'}/.insteadOf",
                "GIT_CONFIG_VALUE_0": "https://git.heroku.com/"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("HEROKU_APP", "VIRTUAL_ENV")} | {"PATH": path, **redirect}

    def deploy() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "heroku-deploy", "HEROKU_APP=my-maps"], cwd=copy, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    # An exception in .dockerignore lets one file of an ignored directory into the image.
    (copy / ".dockerignore").write_text((copy / ".dockerignore").read_text() + "!tests/fixtures/keep.json\n")
    subprocess.run([*GIT, "commit", "-qam", "keep a fixture"], cwd=copy, env=GIT_ALONE, check=True)
    (copy / "tests" / "fixtures").mkdir()
    (copy / "tests" / "fixtures" / "keep.json").write_text("{}\n")
    (copy / "app" / "greeting.py").write_text('GREETING = "hello"\n')
    (copy / "Procfile").write_text((copy / "Procfile").read_text() + "\n")
    # In neither image (.dockerignore): no difference between local and Heroku.
    (copy / "README.md").write_text((copy / "README.md").read_text() + "\nA note of my own.\n")
    (copy / "tests" / "test_mine.py").write_text("def test_mine():\n    pass\n")
    refused = deploy()
    assert refused.returncode != 0
    assert refused.stderr.startswith("error: 3 file(s) differ from HEAD, the commit Heroku would build"), refused.stderr
    said = "Procfile (modified), app/greeting.py (untracked), tests/fixtures/keep.json (untracked): commit them"
    assert said in refused.stderr, refused.stderr
    assert "heroku stack:set" not in refused.stdout, "nothing was changed on the app"

    subprocess.run(["git", "checkout", "-q", "--", "Procfile"], cwd=copy, check=True)
    (copy / "app" / "greeting.py").unlink()
    (copy / "tests" / "fixtures" / "keep.json").unlink()
    # Ignored by git and let in by .dockerignore: in make up's image only. Ignored by both: in neither.
    (copy / ".git" / "info" / "exclude").write_text("app/local_settings.py\nbuild/\n")
    (copy / "app" / "local_settings.py").write_text("DEBUG = True\n")
    (copy / "build").mkdir()
    (copy / "build" / "out.bin").write_text("built\n")
    refused = deploy()
    assert refused.returncode != 0
    assert refused.stderr.startswith(
        "error: 1 path(s) git ignores are in the image make up builds, so Heroku's (built from what git pushes) "
        "lacks them: app/local_settings.py: add them to .dockerignore"
    ), refused.stderr
    assert "heroku stack:set" not in refused.stdout, "nothing was changed on the app"
    (copy / "app" / "local_settings.py").unlink()
    result = deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "==> left out of the image by .dockerignore, so no difference: README.md (modified), "
        "tests/test_mine.py (untracked)" in result.stdout
    ), result.stdout
    assert "heroku stack:set container --app my-maps" in result.stdout
    pushed = subprocess.run(["git", "--git-dir", str(tmp_path / "git" / "my-maps.git"), "rev-parse", "main"],
                            capture_output=True, text=True)  # fmt: skip
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=copy, capture_output=True, text=True)
    assert pushed.stdout.strip() == head.stdout.strip(), "the app's own repository received HEAD"


@pytest.mark.docker
def test_what_make_heroku_deploy_counts_as_left_out_of_the_image_is_what_docker_leaves_out(tmp_path):
    """Docker's documented examples (*/temp*, temp?, **, ! exceptions) and its corners, as Compose builds them."""
    context = tmp_path / "context"
    files = ["temporary.txt", "tempa", "tempab", "README.md", "README-secret.md", "CHANGES.md", "x.go",
             "a/b/y.go", "a/b/c/keep", "somedir/temporary.txt", "somedir/subdir/temporary.txt",
             "somedir/subdir/other.txt", "docs/notes.md", "build/out.bin", "build/keep/this.txt", ".env",
             "first", "axb", "ax/yb", "#sp", "q^z", "q^zz", "]x", "cx", "d.txt", "dxtxt", "logs/btmp",
             "cachex/y"]  # fmt: skip
    for name in files:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(name)
    rules = ["first", "*/temp*", "*/*/temp*", "temp?", "**/*.go", "*.md", "!README*.md", "README-secret.md",
             "build", "!build/keep", "./.env/", "# a comment", "", "a**b", "  #sp", "q^z", "[\\]]x", "[a-c]x",
             "d.txt", "q^z?", "**tmp", "cache**"]  # fmt: skip
    # A byte-order mark before the first rule, as some editors write it.
    (context / ".dockerignore").write_text("\ufeff" + "\n".join(rules) + "\n")
    in_image = files_built_from(context) - {".dockerignore"}
    read = dockerignore.parse((context / ".dockerignore").read_text())
    assert {name for name in files if not dockerignore.left_out(name, read)} == in_image


def files_built_from(context: Path) -> set[str]:
    """Return the files COPY puts in an image built from ``context`` with BuildKit, through Compose.

    Compose, which the project requires, builds with BuildKit itself; the
    docker CLI would need its buildx plugin for that, which not every install has.
    """
    tag = unique("dockerignore-probe:")
    build = {"context": str(context), "dockerfile_inline": "FROM scratch\nCOPY . /context/\n"}
    (context.parent / "compose.yml").write_text(json.dumps({"services": {"probe": {"image": tag, "build": build}}}))
    env = {**os.environ, "COMPOSE_PROJECT_NAME": tag.replace(":", "")}
    try:
        built = subprocess.run(
            ["docker", "compose", "--file", "compose.yml", "--progress", "quiet", "build"],
            cwd=context.parent, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
        # A container of an image FROM scratch is only created, never started: its files are
        # exported, with those Docker adds to every container (/.dockerenv, /etc/hosts) outside /context.
        container = docker("create", tag, "none").stdout.strip()
        try:
            exported = subprocess.run(["docker", "export", container], capture_output=True, timeout=60, check=True)
        finally:
            docker("rm", container, check=False)
    finally:
        docker("image", "rm", tag, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
        names = [member.name for member in tar.getmembers() if member.isfile()]
    return {name.removeprefix("context/") for name in names if name.startswith("context/")}


def test_heroku_targets_without_an_app_say_how_to_name_one(tmp_path):
    """No HEROKU_APP and no git remote heroku (a repository without remotes stands in for the checkout's)."""
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "no-remotes.git")], check=True)
    env = {k: v for k, v in os.environ.items() if k != "HEROKU_APP"}
    env |= {"PATH": heroku_cli(tmp_path, logged_in=True), "GIT_DIR": str(tmp_path / "no-remotes.git")}
    for target in ("heroku-deploy", "heroku-migrate"):
        result = subprocess.run(["make", target], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert result.stderr.startswith("error: no Heroku app: set HEROKU_APP=name, or add the git remote heroku")
        assert "heroku stack:set" not in result.stdout, "nothing was changed on any app"


def makefile_in(directory: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the project's Makefile in ``directory``, beside copies of the files it reads its settings from."""
    for name in (".env.example", ".postgres-version", "docker-compose.yml"):
        (directory / name).write_text((PROJECT_ROOT / name).read_text())
    makefile = str(PROJECT_ROOT / "Makefile")
    # Not as a sub-make of make test, and with no terminal to answer a question.
    env = outside_make(os.environ if env is None else env)
    return subprocess.run(["make", "-f", makefile, *args], cwd=directory, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip


@pytest.mark.docker
def test_a_checkout_in_a_folder_named_as_another_ones_keeps_off_that_ones_stack(tmp_path):
    """Compose names a project after its folder: a second clone named alike would take over the first's stack.

    A container Compose made says which folder it is from; the same folder reached through a link is no other.
    """
    require_docker()
    project = unique("twin")
    first, second, link = tmp_path / "a" / project, tmp_path / "b" / project, tmp_path / "link"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    link.symlink_to(first)
    env = {key: value for key, value in os.environ.items() if key != "COMPOSE_PROJECT_NAME"}

    def container_of(folder: Path) -> str:
        labels = {"com.docker.compose.project": project, "com.docker.compose.project.working_dir": str(folder)}
        name = unique(f"{project}-db-")
        return docker("create", "--name", name, *label_args(labels), python_image(), "true").stdout.strip()

    made = [container_of(first)]
    try:
        refused = makefile_in(second, "up", env=env)
        assert refused.returncode != 0
        assert refused.stderr.splitlines()[0] == (
            f"error: the Compose project {project} is another checkout's, in {first}: its containers and database "
            "would be this one's too; give this checkout a name of its own, COMPOSE_PROJECT_NAME=... in its .env"
        ), refused.stderr
        assert "==>" not in refused.stdout, "nothing was built or started"
        assert makefile_in(second, "compose", env={**env, "COMPOSE_PROJECT_NAME": f"{project}-b"}).returncode == 0
        assert makefile_in(first, "compose", env=env).returncode == 0, "its own folder's"
        assert makefile_in(link, "compose", env=env).returncode == 0, "its own folder, through a link"
        made.append(container_of(link))
        assert makefile_in(first, "compose", env=env).returncode == 0, "a label that names the folder by a link"
        made.append(container_of(tmp_path / "gone" / project))
        gone = makefile_in(first, "compose", env=env).stderr
        assert f"no longer there (docker compose -p {project} down removes what it left)" in gone, gone
    finally:
        docker("rm", "--force", *made, check=False)


def test_downgrade_to_base_asks_first_before_anything_runs(tmp_path):
    """It deletes every table the migrations made: like make db-reset, a terminal answer or confirm=1."""
    result = makefile_in(tmp_path, "downgrade", "to=base")
    assert result.returncode != 0
    assert result.stderr.startswith("error: make downgrade to=base deletes every table the migrations made")
    assert "add confirm=1" in result.stderr and "==>" not in result.stdout, "nothing was built, started or run"


def test_a_virtualenv_whose_python_is_gone_leaves_the_helpers_on_python3(tmp_path):
    """A venv outlives the Python it was made with (pyenv uninstall): make .env still makes a secret."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(tmp_path / "uninstalled" / "python3.11")
    result = makefile_in(tmp_path, ".env", f"VENV={venv}")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^SECRET_KEY=[0-9a-f]{64}$", (tmp_path / ".env").read_text(), re.M)


def test_a_setting_left_empty_is_unset_as_compose_reads_it(tmp_path):
    """WEB_PORT= (environment or command line) means .env's value, as ${WEB_PORT:-5000} does in Compose."""
    (tmp_path / ".env").write_text("WEB_PORT=6111\n")
    show = ["-s", "--eval", "show: ; @echo $(WEB_PORT) $$WEB_PORT", "show"]

    def shown(*args: str, **env: str) -> str:
        result = makefile_in(tmp_path, *show, *args, env={**os.environ, **env})
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert shown(WEB_PORT="") == "6111 6111", "make and what it exports to Compose agree"
    assert shown("WEB_PORT=") == "6111 6111"
    assert shown("WEB_PORT=7222") == "7222 7222"
    assert shown(WEB_PORT="7333") == "7333 7333"


@pytest.mark.docker
@pytest.mark.parametrize("password", ["p@ss/word", "it's", "two words"])
def test_a_password_a_url_cannot_hold_as_it_is_stops_make_up_before_it_starts_anything(tmp_path, password):
    """DATABASE_URL holds POSTGRES_PASSWORD as it is: "@" or "/" would send web to another host."""
    (tmp_path / ".env").write_text(f'POSTGRES_PASSWORD="{password}"\nSECRET_KEY=x\nCOMPOSE_PROJECT_NAME=never\n')
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    result = makefile_in(tmp_path, "up", env=env)
    assert result.returncode != 0
    assert result.stderr.startswith("error: POSTGRES_PASSWORD may hold only letters, digits and - . _ ~"), result.stderr
    assert "==>" not in result.stdout, "nothing was built or started"
    assert makefile_in(tmp_path, "db-password", "POSTGRES_PASSWORD=Url-safe_1.~", env=env).returncode == 0


def test_a_dyno_size_is_read_in_any_case_as_heroku_reads_it(tmp_path):
    """The CLI writes standard-2x, the dashboard Standard-2X: both are 1 GB, restarted at 2 GB (R15)."""
    (tmp_path / ".env").write_text("DYNO_SIZE=Standard-2X\n")
    shown = "$(DYNO_SIZE) $(DYNO_MEMORY) $$DYNO_MEMORY_LIMIT $$DYNO_SIZE"
    show = ["-s", "--eval", f"show: dyno-size ; @echo {shown}", "show"]
    result = makefile_in(tmp_path, *show, env={k: v for k, v in os.environ.items() if k != "DYNO_SIZE"})
    assert (result.returncode, result.stdout.strip()) == (0, "standard-2x 1024m 2048m standard-2x"), result.stderr


@pytest.mark.docker
def test_make_runs_the_compose_plugin_the_docker_cli_would_find_first(tmp_path):
    """It runs the plugin itself, not through `docker compose`: DOCKER_CONFIG's comes first, as for the CLI.

    Where config.json names extra plugin directories (searched first by the CLI), make goes through the CLI.
    """
    config = tmp_path / "config"
    plugin = config / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True)
    plugin.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "ran"}\necho 2.21.0\n')
    plugin.chmod(0o755)
    # The user's Docker config and contexts, so the engine is the one the suite uses (Colima, OrbStack).
    own = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    settings = json.loads((own / "config.json").read_text()) if (own / "config.json").is_file() else {}
    settings.pop("cliPluginsExtraDirs", None)
    (config / "config.json").write_text(json.dumps(settings))
    if (own / "contexts").is_dir():
        (config / "contexts").symlink_to(own / "contexts")
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    env.pop("COMPOSE_PLUGIN", None)
    result = makefile_in(tmp_path, "ps", env=env)
    assert result.returncode != 0
    assert result.stderr.startswith(f"error: Docker Compose 2.21.0 ({plugin}) is too old; 2.22 or newer"), result.stderr
    assert (tmp_path / "ran").read_text() == "version --short\n"

    (config / "config.json").write_text(json.dumps({**settings, "cliPluginsExtraDirs": [str(tmp_path / "extra")]}))
    result = makefile_in(tmp_path, "ps", env=env)
    assert "too old" not in result.stderr, "through docker compose, which looks in the extra directory first"
    ran = (tmp_path / "ran").read_text().splitlines()
    assert ran.count("version --short") == 1, "make did not run the plugin in DOCKER_CONFIG itself again"


def test_a_failed_build_whose_words_docker_lost_runs_again_to_show_them(tmp_path):
    """BuildKit can drop all progress of one of two builds that fail at once: the log names the failed step but
    not what it said (moby/buildkit#1456). The build runs once more, so the user still gets the file and line."""
    builds, summary = tmp_path / "builds", tmp_path / "summary"
    summary.write_text(
        '------\n > [web 5/5] RUN python -m compileall -q app:\n0.69   File "app/health.py", line 65\n'
        "0.69 SyntaxError: invalid syntax\n------\n"
    )
    plugin = tmp_path / "docker-compose"  # the first build's progress is lost, the next ones' is not
    plugin.write_text(f"""#!/bin/sh
[ "$*" = "version --short" ] && echo 2.40.3 && exit 0
echo "$*" >> {builds}
echo '#5 [web internal] load build context'
[ "$(wc -l < {builds})" -eq 1 ] || cat {summary}
echo 'failed to solve: executor failed running [/bin/sh -c python -m compileall -q app]: exit code: 1'
exit 1
""")
    plugin.chmod(0o755)
    built = makefile_in(tmp_path, "image", env={**os.environ, "COMPOSE_PLUGIN": str(plugin), "CI": ""})
    assert built.returncode != 0
    assert "==> Docker lost the failed step's output (another build failed beside it): building once more" in (
        built.stderr
    )
    assert 'File "app/health.py", line 65' in built.stderr and "SyntaxError" in built.stderr, built.stderr
    assert builds.read_text().splitlines() == ["--progress plain build web"] * 2

    built = makefile_in(tmp_path, "image", env={**os.environ, "COMPOSE_PLUGIN": str(plugin), "CI": ""})
    assert "building once more" not in built.stderr, "a failure that said why is not built again"
    assert 'File "app/health.py", line 65' in built.stderr
    assert len(builds.read_text().splitlines()) == 3


def test_make_and_the_scripts_read_env_as_compose_does(tmp_path):
    """Quotes, comments, export, blanks, a BOM, CRLF, a line added twice: make exports what Compose reads."""
    (tmp_path / ".env").write_bytes(
        b'\xef\xbb\xbfWEB_PORT="21000"  # the router\r\n'
        b"export DB_PORT = 21432\n"
        b"WEB_RELOAD=1\n"
        b'WEB_RELOAD="0"\n'
        b"POSTGRES_PASSWORD=two words # and a comment\n"
        b"WEB_TLS_PORT='21443'\n"
        b"DYNO_SIZE=standard-2x#not-a-comment\n"
    )
    expected = ["21000", "21432", "0", "two words", "21443", "standard-2x#not-a-comment"]
    names = ["WEB_PORT", "DB_PORT", "WEB_RELOAD", "POSTGRES_PASSWORD", "WEB_TLS_PORT", "DYNO_SIZE"]
    show = "show: ; @printf '%s|' " + " ".join(f'"$({name})"' for name in names)
    shown = makefile_in(
        tmp_path, "-s", "--eval", show, "show", env={k: v for k, v in os.environ.items() if k not in names}
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("|")[:-1] == expected
    from localstack import env_file  # bin/ is on sys.path (above)

    assert [env_file(tmp_path / ".env")[name] for name in names] == expected, "bin/ scripts read it the same way"


def test_a_stale_watcher_pid_file_never_ends_another_program(tmp_path):
    """After a reboot .run/watch.pid may name another program's process group: make leaves it running."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / ".run").mkdir()
        (tmp_path / ".run" / "watch.pid").write_text(str(other.pid))
        result = makefile_in(tmp_path, "unwatch")
        assert result.returncode == 0, result.stderr
        assert other.poll() is None, "the other program's process group was ended"
        assert not (tmp_path / ".run" / "watch.pid").exists(), "the stale file is gone"
    finally:
        other.kill()
        other.wait()


def settings_unset() -> dict[str, str]:
    """The environment without the settings make reads first (a run of the suite may set them)."""
    return {k: v for k, v in os.environ.items() if k not in {"DB_PORT", "POSTGRES_PASSWORD", "WEB_PORT"}}


def test_make_local_reaches_the_compose_database_on_db_port(tmp_path):
    """An .env of an older checkout still says 5432; honcho's processes get DB_PORT's URL all the same."""
    (tmp_path / ".env").write_text("SECRET_KEY=s\nDATABASE_URL=postgres://app:app@127.0.0.1:5432/app\nDB_PORT=6543\n")
    venv = Path(sys.executable).parent.parent
    as_local = ["--eval", "as-local: local-env ; @$(HONCHO) run printenv DATABASE_URL", "as-local"]
    result = makefile_in(tmp_path, "-s", f"VENV={venv}", *as_local,
                         env={**settings_unset(), "DATABASE_URL": "postgres://elsewhere/db"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgres://dyno:app@127.0.0.1:6543/app"


def test_the_tests_postgres_is_pulled_before_pytest_starts_or_one_line_says_why_not(tmp_path, server_url):
    """make test and test-quick: an engine that does not answer, or an image that cannot be pulled, is one line
    with the way out (every test that needed the database used to fail with the same traceback)."""
    bare = {k: v for k, v in os.environ.items() if k not in {"TEST_DATABASE_URL", "POSTGRES_IMAGE"}}
    no_engine = makefile_in(tmp_path, "test-database", env={**bare, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert no_engine.returncode != 0
    assert no_engine.stderr.startswith(
        "error: the tests' Postgres runs in Docker, and no Docker engine answers: start it, or set TEST_DATABASE_URL"
    ), no_engine.stderr
    own_server = makefile_in(tmp_path, "test-database", env={
        **bare, "DOCKER_HOST": f"unix://{tmp_path}/none.sock", "TEST_DATABASE_URL": "postgresql://elsewhere/db",
    })  # fmt: skip
    assert own_server.returncode == 0 and own_server.stdout + own_server.stderr == "", "it needs no Docker"

    require_docker()
    missing = "local/no-such-postgres:0"  # no registry has it: its pull fails with internet too
    unpulled = makefile_in(tmp_path, "test-database", env={**bare, "POSTGRES_IMAGE": missing})
    assert unpulled.returncode != 0
    assert f"==> pulling {missing}, the tests' Postgres (once)" in unpulled.stdout
    assert f"error: {missing}, the tests' Postgres, could not be pulled (Docker said why, above): connect and " in (
        unpulled.stderr
    )
    if "TEST_DATABASE_URL" not in os.environ:  # then server_url is a container of postgres_image(): it is here
        here = makefile_in(tmp_path, "test-database", env={**bare, "POSTGRES_IMAGE": postgres_image()})
        assert here.returncode == 0 and here.stdout == "", "an image that is here is not pulled again"


def test_a_make_killed_while_its_step_finishes_out_of_sight_keeps_the_turn_until_the_step_is_done(tmp_path):
    """A closed terminal ends make at once while bin/localdb finishes a snapshot: the next make waited for nothing."""
    step = "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
           "print('step starts; the last one was done:', os.path.exists('done'), flush=True); " \
           "time.sleep(2); open('done', 'w').close()"  # fmt: skip
    (tmp_path / "Makefile").write_text(
        f"%-turn:\n\t@{sys.executable} {PROJECT_ROOT / 'bin' / 'one_at_a_time.py'} turn.pid $$PPID $*\n"
        f'step: step-turn\n\t@{sys.executable} -c "{step}"\n'
    )
    env = outside_make(os.environ)
    first = subprocess.Popen(["make", "step"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)  # a terminal's job: make leads its process group  # fmt: skip
    assert first.stdout is not None
    assert "step starts" in first.stdout.readline()
    os.killpg(first.pid, signal.SIGTERM)
    first.wait(timeout=30)  # make is gone at once; its step goes on (the pipe stays open: it writes there)
    first.stdout.close()
    assert not (tmp_path / "done").exists()
    second = subprocess.run(["make", "step"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert f"==> a make step of this checkout was stopped, and its step is finishing (pid {first.pid}): make step " \
           "waits for it to finish" in second.stdout  # fmt: skip
    assert "step starts; the last one was done: True" in second.stdout


@pytest.mark.parametrize("folder", ["_My App.2-x", "plain", "Jane Doe/app"])
def test_the_makefiles_project_name_is_the_one_compose_derives(tmp_path, folder):
    """make names the project without running Compose (make debug's dyno, image clean-up, the checkout guard):
    it must be Compose's name, whatever the folder is called, spaces in a folder above it too."""
    directory = tmp_path / "Parent Folder" / folder
    directory.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "COMPOSE_PROJECT_NAME"} | {"SECRET_KEY": "x"}
    printed = makefile_in(directory, "-s", "--eval", "name: ; @echo '$(PROJECT_NAME)'", "name", env=env)
    assert printed.returncode == 0, printed.stderr
    config = subprocess.run([*compose_command(), "config", "--format", "json"], cwd=directory, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert config.returncode == 0, config.stderr
    assert printed.stdout.strip() == json.loads(config.stdout)["name"]


def test_a_stopped_watch_whose_pid_is_another_programs_now_is_not_waited_for(tmp_path):
    """.run/watch.stopped left from long ago may name another program's process group: make up must not wait
    on it, and the lock naming that pid is stale, so it goes."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        locks = tmp_path / ".docker" / "docker-compose"
        locks.mkdir(parents=True)
        (locks / "proj.pid").write_text(str(other.pid))
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {"HOME": str(tmp_path)}
        began = time.monotonic()
        done = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "watch_lock.py"), "stopped", "proj",
                               str(other.pid)], env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0 and done.stdout + done.stderr == ""
        assert time.monotonic() - began < 5, "it waited for a group with no compose watch in it"
        assert not (locks / "proj.pid").exists()
        assert other.poll() is None, "the other program runs on"
    finally:
        other.kill()
        other.wait()
