"""A Compose dyno lives as Heroku's dyno manager keeps one: SIGTERM to every process in it as it stops, R12
and SIGKILL 30 s later; R14 over its memory quota, R15 and a restart at its limit.

Each test runs bin/proc with a Procfile of its own in a container of the
app image's base, as Compose runs a dyno (the container's first process,
LOCAL_STACK=1), and stops it with Docker, allowing it the time
docker-compose.yml allows a dyno.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools.docker import docker, label_args, unique
from devtools.http import poll
from devtools.project import python_image
from tests.support.docker import container_exit_code, container_logs, container_running, require_docker
from tests.support.dyno import dyno_bin
from tests.support.postgres import run_labels
from tests.support.scripts import bin_script
from tests.support.stack import compose_services

pytestmark = pytest.mark.docker

# Each process says "up" once it is running, so a test signals it only once it can react.
PROCFILE = """\
plain: python3 -c "import time; print('up', flush=True); time.sleep(600)"
parent: python3 parent.py
stubborn: sh -c 'trap "" TERM; echo up; sleep 600'
crash: sh -c 'echo up; sleep 1; exit 3'
hangup: python3 -c "import signal, time; signal.signal(signal.SIGHUP, lambda *_: print('got SIGHUP', flush=True)); \
print('up', flush=True); time.sleep(600)"
hungry: python3 hungry.py
"""
# Takes 100 MB more at SIGUSR1 and 200 MB more at SIGUSR2, and keeps it (bin/proc passes both signals on).
# It writes to stderr, as bin/proc does, so the log's order is the order things happened.
HUNGRY = """\
import signal, sys, time

held = []


def eat(megabytes):
    held.append(b"x" * (megabytes << 20))
    print(f"ate {megabytes} MB", file=sys.stderr, flush=True)


signal.signal(signal.SIGUSR1, lambda *_: eat(100))
signal.signal(signal.SIGUSR2, lambda *_: eat(200))
print("up", file=sys.stderr, flush=True)
while True:
    time.sleep(600)
"""
# A parent that never passes SIGTERM on: it waits for its child (child.py), which says when SIGTERM reaches it.
PARENT = """\
import signal, subprocess, sys, time

child = subprocess.Popen([sys.executable, "child.py"])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(child.wait()))
time.sleep(600)
"""
CHILD = """\
import signal, sys, time

signal.signal(signal.SIGTERM, lambda *_: (print("child got SIGTERM", flush=True), sys.exit(0)))
print("child up", flush=True)
time.sleep(600)
"""
EXIT_LINE = "Error R12 (Exit timeout) -> At least one process failed to exit within 30 seconds of SIGTERM"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """bin/proc (and what it reads) beside the Procfile above and the programs it runs, readable by a dyno's user."""
    require_docker()
    root = tmp_path_factory.mktemp("dyno")
    dyno_bin(root)
    for name, text in (("Procfile", PROCFILE), ("parent.py", PARENT), ("child.py", CHILD), ("hungry.py", HUNGRY)):
        (root / name).write_text(text)
    for path in (root, root / "bin", *root.rglob("*")):
        path.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def grace(tmp_path_factory) -> int:
    """Return the seconds Docker allows a dyno from SIGTERM to its own SIGKILL, as docker-compose.yml sets them."""
    services = compose_services({"SECRET_KEY": "x"}, directory=tmp_path_factory.mktemp("grace"))
    period = services["web"]["stop_grace_period"]
    seconds = re.fullmatch(r"(\d+)s", period)
    assert seconds, f"stop_grace_period {period!r} is not in whole seconds"
    return int(seconds.group(1))


@contextmanager
def dyno(project: Path, process_type: str, *env: str, memory: str = "") -> Iterator[str]:
    """Run a dyno of ``process_type`` as Compose does (``memory``: its hard limit); yield its container once it
    is up, remove it at the end."""
    name = unique("dyno")
    options = [f"--env={pair}" for pair in ("LOCAL_STACK=1", f"DYNO={process_type}.1", *env)]
    options += [f"--memory={memory}", f"--memory-swap={memory}"] if memory else []
    docker("run", "--detach", "--name", name, "--user", "65534", "--volume", f"{project}:/dyno:ro",
           *label_args(run_labels()), *options, python_image(), "/dyno/bin/proc", process_type)  # fmt: skip
    try:
        assert poll(lambda: "up" in container_logs(name).split(), 30), container_logs(name)
        yield name
    finally:
        docker("rm", "--force", name, check=False)


def stop(container: str, grace: int) -> float:
    """Stop ``container`` as Compose stops a dyno; return how long it took."""
    started = time.monotonic()
    docker("stop", "--time", str(grace), container)
    return time.monotonic() - started


def test_a_process_without_a_sigterm_handler_of_its_own_stops_at_once(project, grace):
    """On Heroku SIGTERM ends such a process at once; as a container's first process it would ignore it."""
    with dyno(project, "plain") as container:
        took = stop(container, grace)
        assert took < 10, f"took {took:.1f} s to stop"
        assert container_exit_code(container) == 143, container_logs(container)
        assert "Stopping all processes with SIGTERM" in container_logs(container)


def test_every_process_in_the_dyno_gets_sigterm_not_only_the_first(project, grace):
    """The parent here waits for its child and never passes SIGTERM on: on Heroku the child gets it anyway."""
    with dyno(project, "parent") as container:
        assert poll(lambda: "child up" in container_logs(container), 30), container_logs(container)
        took = stop(container, grace)
        said = container_logs(container)
        assert "child got SIGTERM" in said, said
        assert container_exit_code(container) == 0, said
        assert took < 10, f"took {took:.1f} s to stop"


@pytest.mark.waits
def test_a_process_still_running_30_s_after_sigterm_gets_herokus_r12_line_and_sigkill(project, grace):
    with dyno(project, "stubborn") as container:
        took = stop(container, grace)
        said = container_logs(container)
        assert EXIT_LINE in said, f"Docker's own SIGKILL came first ({took:.1f} s): {said}"
        assert "Stopping remaining processes with SIGKILL" in said, said
        assert container_exit_code(container) == 137
        assert took >= 30, f"R12 came after {took:.1f} s, before Heroku's 30 s"


def test_the_dynos_own_exit_status_is_the_containers(project):
    """A process that exits by itself ends the dyno with its status, which make ps shows as crashed."""
    with dyno(project, "crash") as container:
        assert poll(lambda: not container_running(container), 30)
        assert container_exit_code(container) == 3


def test_other_signals_reach_the_process(project):
    """make db-restore sends web a SIGHUP to have gunicorn start new workers on the restored database."""
    with dyno(project, "hangup") as container:
        docker("kill", "--signal", "HUP", container)
        assert poll(lambda: "got SIGHUP" in container_logs(container), 10), container_logs(container)
        assert container_running(container)


@pytest.mark.parametrize("env", [("DYNO=run.1",), ("WEB_DEBUG=1",)], ids=["one-off", "make debug"])
def test_a_one_off_and_the_debug_dyno_are_the_process_itself_so_ctrl_c_reaches_them(project, env):
    """docker compose run passes Ctrl-C to the container's first process: Python there raises KeyboardInterrupt."""
    with dyno(project, "plain", *env) as container:
        docker("kill", "--signal", "INT", container)
        assert poll(lambda: not container_running(container), 10)
        assert container_exit_code(container) == 130, container_logs(container)
        assert "KeyboardInterrupt" in container_logs(container)


def test_over_its_quota_a_dyno_logs_r14_and_at_twice_it_r15_and_starts_again(project):
    """Heroku's dyno manager: R14 while a dyno is over its quota (it swaps there), R15 and a restart at twice it;
    a second R15 soon after that restart leaves the dyno down (crashed), as no restart loop should run here.

    A small quota keeps the test light: a dyno takes it from DYNO_MEMORY, and Compose gives it twice that as
    its hard limit (test_parity checks docker-compose.yml does).
    """
    with dyno(project, "hungry", "DYNO_MEMORY=64m", memory="128m") as container:
        docker("kill", "--signal", "USR1", container)
        assert poll(lambda: "Error R14 (Memory quota exceeded)" in container_logs(container), 15), container_logs(
            container
        )
        said = container_logs(container)
        assert said.index("ate 100 MB") < said.index("Error R14"), "nothing said while under the quota"
        [(used, percent)] = re.findall(r"^Process running mem=(\d+)M\((\d+\.\d)%\)$", said, re.M)
        assert 100 <= int(used) < 128 and float(percent) == pytest.approx(int(used) / 64 * 100, abs=1.6), said
        assert container_running(container), "over the quota a dyno runs on, as on Heroku"

        docker("kill", "--signal", "USR2", container)  # past the hard limit: the kernel kills the process
        assert poll(lambda: container_logs(container).splitlines().count("up") == 2, 30), container_logs(container)
        said = container_logs(container)
        assert "Process running mem=128M(200.0%)\nError R15 (Memory quota vastly exceeded)" in said, said
        assert "Stopping process with SIGKILL" in said
        assert said.index("Error R15") < said.rindex("up"), "the dyno started again after R15"
        assert container_running(container)
        # make ps counts the dyno as up since that restart, as heroku ps does, not since the container started.
        dynos, started = bin_script("dynos"), json.loads(docker("inspect", container).stdout)[0]
        [look] = dynos.looks([started["Id"]]).values()
        assert look.restarted is not None and look.restarted >= started["State"]["StartedAt"][:19] + "Z"
        assert dynos.since(started, look.restarted) == look.restarted and 0 < look.used < 128 << 20

        # Another process of the dyno is the one killed (a gunicorn worker, say), soon after the restart: R15
        # again, and the dyno stays down rather than restart in a loop (Heroku waits longer after each crash).
        eat = docker("exec", container, "python3", "-c", "b = b'x' * (200 << 20)", check=False)
        assert eat.returncode == 137, "the kernel killed it at the limit"
        assert poll(lambda: not container_running(container), 30), container_logs(container)
        said = container_logs(container)
        assert said.count("Error R15 (Memory quota vastly exceeded)") == 2, said
        assert "The dyno crashed again within 60 s of its restart: it stays down until make up" in said, said
        assert said.splitlines().count("up") == 2 and container_exit_code(container) == 137, "make ps: crashed"
