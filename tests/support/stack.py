"""A private copy of the project with its own Compose stack, driven through the make targets users type."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from app.migrations.history import PROJECT_ROOT
from devtools.docker import copy_project, docker, free_port, unique
from devtools.http import http_call, http_json, http_status, poll
from devtools.project import DYNO_PORT
from localstack import compose_command, router_admin_args
from tests.support.docker import APP_IMAGE, SUITE_VENV, require_docker
from watch_lock import stopped as watch_stopped

# make's own variables: under make test, a make the suite starts would think itself a sub-make
# (make[1] lines, and -j from the user's MAKEFLAGS).
MAKES_OWN = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")


# Compose as make runs it (make test exports the Makefile's choice): the plugin itself, where found.
COMPOSE = compose_command()


def outside_make(env: Mapping[str, str]) -> dict[str, str]:
    """Return ``env`` less make's own variables: a make started with it runs as a user's would."""
    return {name: value for name, value in env.items() if name not in MAKES_OWN}


def compose_services(env: Mapping[str, str], *options: str, directory: Path | None = None) -> dict:
    """Return docker-compose.yml's services as Compose resolves them with ``env`` (and ``options``, such
    as --env-file), from ``directory`` (the project's own by default): no engine is needed."""
    project = ["--project-directory", str(directory)] if directory else []
    config = subprocess.run(
        [*COMPOSE, "-f", str(PROJECT_ROOT / "docker-compose.yml"), *project, *options, "config",
         "--format", "json"],
        env=dict(env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert config.returncode == 0, config.stderr
    services: dict = json.loads(config.stdout)["services"]
    return services


class Stack:
    """One project copy: its own Compose project name, image tag and ports on 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = unique("t")
        self.env = {
            **outside_make(os.environ),
            "COMPOSE_PROJECT_NAME": self.name,
            "APP_IMAGE": f"{APP_IMAGE}-{self.name}",
            "WEB_PORT": str(free_port()),
            "WEB_TLS_PORT": str(free_port()),
            "WEB_DIRECT_PORT": str(free_port()),
            "DB_PORT": str(free_port()),
            # One worker: these tests are about the stack, not concurrency, and run several stacks at once.
            "WEB_CONCURRENCY": "1",
            # make revision, make local and make check use the suite's virtualenv.
            "VENV": str(SUITE_VENV),
        }
        # The user's own settings stay out: the copy runs with the project's defaults.
        for inherited in ("SECRET_KEY", "DATABASE_URL", "WEB_RELOAD", "DYNO", "DYNO_SIZE", "WEB_SCALE",
                          "GUNICORN_THREADS", "DB_MAX_CONNECTIONS", "LOCAL_STACK", "POSTGRES_PASSWORD"):  # fmt: skip
            self.env.pop(inherited, None)
        for name in [name for name in self.env if name.startswith("MIGRATION_")]:  # the user's own timeouts
            self.env.pop(name)

    @property
    def port(self) -> str:
        """The router's plain HTTP port (web is reached through the router only)."""
        return self.env["WEB_PORT"]

    @property
    def tls_port(self) -> str:
        return self.env["WEB_TLS_PORT"]

    def make(self, *targets: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``make targets`` in the copy, as a user would (no terminal)."""
        return subprocess.run(
            ["make", *targets], cwd=self.directory, env={**self.env, **env},
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def follow_logs(
        self,
        marker: str,
        *args: str,
        timeout: float = 30,
        linger: float = 1,
        meanwhile: Callable[[], None] | None = None,
        stop: signal.Signals = signal.SIGTERM,
    ) -> list[str]:
        """Follow `make logs args` as a user does, calling ``meanwhile`` once it runs; return what it showed up
        to ``linger`` s after a line with ``marker``, then end it with ``stop`` (SIGINT: as Ctrl-C at its
        terminal, which must end it within 5 s)."""
        lines: list[str] = []
        with subprocess.Popen(
            ["make", "logs", *args], cwd=self.directory, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        ) as process:  # fmt: skip

            def read() -> None:
                for line in process.stdout:
                    lines.append(line)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            try:
                if meanwhile is not None:
                    meanwhile()
                poll(lambda: any(marker in line for line in list(lines)), timeout)
                time.sleep(linger)  # room for the same line to come twice
            finally:
                # A Compose plugin signalled as it starts can miss the SIGTERM and
                # hold the pipe open: then the rest of the group gets SIGKILL.
                os.killpg(process.pid, stop)
                reader.join(5)
                went_on = reader.is_alive()
                if went_on:
                    with suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    reader.join(10)
        assert not (went_on and stop == signal.SIGINT), "make logs went on after Ctrl-C:\n" + "".join(lines[-10:])
        return lines

    def start(self, *targets: str) -> subprocess.Popen[str]:
        """Start ``make targets`` in the background, as in another terminal; both its streams on ``stdout``."""
        return subprocess.Popen(
            ["make", *targets], cwd=self.directory, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def has_the_turn(self, make: subprocess.Popen[str], target: str) -> bool:
        """Whether ``make`` (running ``target``) has the turn bin/one_at_a_time.py gives: its pid in .run/turn.pid."""
        turn = self.directory / ".run" / "turn.pid"
        return turn.exists() and turn.read_text().split()[:2] == [str(make.pid), target]

    def start_in_session(self, *targets: str, ignoring: int | None = None, **env: str) -> subprocess.Popen[str]:
        """Start ``make targets`` as a terminal's foreground job would run: a process group of its own, which
        a test signals as a whole (os.killpg), streams apart. ``ignoring``: a signal it starts with ignored."""

        def signals() -> None:
            # SIGINT as a terminal gives it, even when the suite runs with it ignored (started in the background).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if ignoring is not None:
                signal.signal(ignoring, signal.SIG_IGN)

        return subprocess.Popen(
            ["make", *targets], cwd=self.directory, env={**self.env, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True, preexec_fn=signals,
        )  # fmt: skip

    def interrupt(
        self, cue: str, *targets: str, sig: int = signal.SIGINT, ignoring: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``make targets`` and press Ctrl-C (SIGINT to its process group) as it prints a line with ``cue``.

        Or send ``sig`` to the group: SIGHUP as a closed terminal, SIGTERM as kill.
        ``ignoring``: a signal make starts with ignored, as under nohup (SIGHUP).
        """

        make = self.start_in_session(*targets, ignoring=ignoring)
        assert make.stdout is not None
        said = []
        for line in make.stdout:
            said.append(line)
            if cue in line:
                os.killpg(make.pid, sig)
                break
        rest, errors = make.communicate(timeout=120)
        return subprocess.CompletedProcess(make.args, make.returncode, "".join(said) + rest, errors)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose args`` for this stack."""
        return subprocess.run(
            [*COMPOSE, *args], cwd=self.directory, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def api(self, method: str, path: str, body=None, token=None):
        """Send a JSON request to web; return (status, decoded body)."""
        return http_json(f"http://127.0.0.1:{self.port}{path}", method, body, token)

    def status(self, path: str) -> int | None:
        """Return the status of GET ``path``, or None while nothing answers (web restarting)."""
        return http_status(f"http://127.0.0.1:{self.port}{path}")

    def call(self, method: str, path: str, body=None, token=None):
        """Send a JSON request to web; return (status, headers, decoded body)."""
        return http_call(f"http://127.0.0.1:{self.port}{path}", method, body, token)

    def sign_up(self, email: str, password: str = "a long password") -> str:
        """Create an account through web; return its token."""
        status, body = self.api("POST", "/accounts", {"email": email, "password": password})
        assert status == 201, body
        return body["token"]

    def psql(self, sql: str) -> str:
        """Run ``sql`` with psql in the db container, as the app's role on its database; return the rows, unaligned."""
        result = self.compose("exec", "-T", "db", "psql", "-X", "-A", "-t", "-U", "app", "-d", "app", "-c", sql)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def logs(self, service: str = "web") -> str:
        result = self.compose("logs", "--no-log-prefix", service)
        return result.stdout + result.stderr

    def router_line(self, marker: str) -> str:
        """Return the router's one log line that holds ``marker`` (a request id, a path), once it is logged."""
        lines = poll(lambda: [line for line in self.logs("router").splitlines() if marker in line], 10)
        assert lines and len(lines) == 1, lines
        return lines[0]

    def router_admin(self, command: str) -> str:
        """Send ``command`` to the router's runtime API (its admin socket, as make scale does); return the answer."""
        config = self.read("compose/router/haproxy.cfg")
        return docker(*router_admin_args(self.container_id("router"), config, command)).stdout

    def dyno_status(self, dyno: str) -> str:
        """Return how the router sees web dyno ``dyno`` (web.1): UP, DOWN, DRAIN, MAINT (resolution)..."""
        for row in csv.DictReader(self.router_admin("show stat").lstrip("# ").splitlines()):
            if (row["pxname"], row["svname"]) == ("web", dyno):
                return row["status"]
        raise AssertionError(f"the router has no server {dyno}")

    def container_id(self, service: str = "web") -> str:
        """Return the id of ``service``'s running container ("" when none runs)."""
        return self.compose("ps", "-q", service).stdout.strip()

    def up(self) -> subprocess.CompletedProcess[str]:
        result = self.make("up")
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def write(self, relative: str, text: str) -> None:
        """Write a file in the copy the way an editor saves it."""
        (self.directory / relative).write_text(text)

    def read(self, relative: str) -> str:
        return (self.directory / relative).read_text()

    def recorded_pid(self, name: str) -> int | None:
        """Return the pid in .run/``name``, if that file holds one."""
        path = self.directory / ".run" / name
        text = path.read_text().strip() if path.exists() else ""
        return int(text) if text.isdecimal() else None

    def down(self) -> None:
        """Stop live reload, remove the stack, its volumes and every image it built (rebuilds included)."""
        running, stopped = self.recorded_pid("watch.pid"), self.recorded_pid("watch.stopped")
        if running is not None:
            with suppress(ProcessLookupError):
                os.killpg(running, signal.SIGTERM)
        self.compose("down", "-v", "--remove-orphans", "--timeout", "5")
        for watch in (running, stopped):  # and one make stopped, its lock not yet removed
            if watch is not None:
                watch_stopped(self.name, watch)  # no lock file left behind, as make down leaves none
        built = docker("image", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.name}", check=False)
        if built.stdout.split():
            docker("image", "rm", "--force", *sorted(set(built.stdout.split())), check=False)


@contextmanager
def project_stack(directory: Path) -> Iterator[Stack]:
    """Yield a Stack for a fresh copy of the project in ``directory``, removed afterwards."""
    require_docker()
    stack = Stack(copy_project(directory / "project"))
    try:
        yield stack
    finally:
        stack.down()


@contextmanager
def router_only(directory: Path) -> Iterator[Stack]:
    """Yield a stack running the router alone: no database, no web dynos (a test starts its own)."""
    with project_stack(directory) as stack:
        stack.env["SECRET_KEY"] = "router-only"
        started = stack.compose("up", "--detach", "router")
        assert started.returncode == 0, started.stderr
        yield stack


def stand_in_dyno(stack: Stack, image: str, number: int, code: str) -> str:
    """Start Python ``code`` in ``image`` as web.``number`` of a router-only stack; return its container name.

    The router finds it as it finds a web dyno: by its Compose name on the stack's network."""
    name = f"{stack.name}-web-{number}"
    docker("run", "-d", "--rm", "--name", name, "--network", f"{stack.name}_default", "-e", f"PORT={DYNO_PORT}",
           image, "python", "-c", code)  # fmt: skip
    return name
