"""The daily loop after `make up`: saved code is served with nothing typed; `make debug` stops at a breakpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

import pexpect
import pytest

from devtools.http import poll
from tests.support.history import head, revision_source
from tests.support.stack import project_stack
from watch_lock import lock_files, watch_runs

pytestmark = pytest.mark.docker

HEALTH = "app/health.py"
OK = 'return {"status": "ok"}'


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with project_stack(tmp_path_factory.mktemp("reload")) as stack:
        up = stack.up()
        assert "==> live reload: watching app/, alembic/" in up.stdout
        yield stack


@pytest.fixture
def health(stack):
    """Yield a function that saves app/health.py with /healthz returning the given expression; restored after."""
    original = stack.read(HEALTH)
    assert OK in original

    def save(returned: str) -> None:
        stack.write(HEALTH, original.replace(OK, f"return {returned}"))

    yield save
    stack.write(HEALTH, original)
    assert poll(lambda: stack.api("GET", "/healthz") == (200, {"status": "ok"}), 30)


def serves(stack, body: dict, timeout: float = 30) -> bool:
    """Return whether /healthz answers ``body`` within ``timeout`` seconds (failing with what web and watch said)."""
    if poll(lambda: stack.api("GET", "/healthz") == (200, body), timeout):
        return True
    watch = (stack.directory / ".run" / "watch.log").read_text()
    raise AssertionError(f"/healthz never answered {body}; web said:\n{stack.logs()[-3000:]}\nwatch said:\n{watch}")


def test_make_logs_shows_what_live_reload_says_as_it_says_it(stack):
    """Its lines come through as written, prefixed like a service's, not held back in a buffer."""
    shown = stack.follow_logs("watch    | ", linger=0)
    assert any(line.startswith("watch    | ") and "Watch enabled" in line for line in shown), "".join(shown)


def compose_watch_lock(project: str) -> Path:
    """Return the lock file the running `docker compose watch` of ``project`` holds, wherever Compose keeps it."""
    [lock] = lock_files(project)
    return lock


def test_a_stale_compose_watch_lock_is_cleared_and_live_reload_starts(stack):
    """Compose leaves its watch lock behind; once its pid is another program's, make clears it (compose#11069)."""
    lock = compose_watch_lock(stack.env["COMPOSE_PROJECT_NAME"])
    assert stack.make("unwatch").returncode == 0
    other = subprocess.Popen(["sleep", "120"])
    try:
        lock.write_text(str(other.pid))  # the stopped watch's pid, now another program's
        started = stack.make("watch")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "==> live reload: removed Compose's stale watch lock" in started.stdout
        assert "==> live reload: watching" in started.stdout
    finally:
        other.kill()
        other.wait()
        if lock.is_file() and lock.read_text().strip() == str(other.pid):
            lock.unlink()


def test_live_reload_stopped_and_started_at_once_waits_for_the_old_watch_and_takes_its_lock(stack):
    """A watch takes over a second to exit: one started meanwhile (make scale after make up) was refused."""
    old = (stack.directory / ".run" / "watch.pid").read_text()
    assert stack.make("unwatch").returncode == 0
    started = stack.make("watch")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "stale watch lock" not in started.stdout, started.stdout
    new = (stack.directory / ".run" / "watch.pid").read_text()
    assert new != old and compose_watch_lock(stack.name).read_text().strip() == new


def test_a_live_reload_killed_outright_is_stopped_whole_and_started_again(stack):
    """kill -9 of the recorded pid left Compose's plugin watching in its group: make up then refused to start one."""
    pid = int((stack.directory / ".run" / "watch.pid").read_text())

    assert watch_runs(pid), "the watch runs in the group the pid names"
    os.kill(pid, signal.SIGKILL)
    assert stack.make("unwatch").returncode == 0
    assert poll(lambda: not watch_runs(pid), 5), "a watcher was left in the group"
    assert "live reload: off until make up succeeds" in stack.make("ps").stdout, "make ps says so"
    started = stack.make("watch")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "==> live reload: watching" in started.stdout
    assert "live reload: on (pid " in stack.make("ps").stdout


def test_a_saved_change_is_served_by_the_running_web_without_a_restart(stack, health):
    container = stack.container_id()
    for _ in range(6):  # both workers hold pooled database connections when the edits come
        assert stack.api("GET", "/readyz")[0] == 200
    health('{"status": "ok", "edit": 1}')
    assert serves(stack, {"status": "ok", "edit": 1})
    health('{"status": "ok", "edit": 2}')
    assert serves(stack, {"status": "ok", "edit": 2})
    assert stack.container_id() == container, "the same container served both edits"
    # The old workers closed their database connections as they went: Postgres saw no resets.
    assert "Connection reset by peer" not in stack.logs("db")
    assert "reload: app/health.py changed; restarting the workers" in stack.logs()


def test_once_the_old_worker_is_gone_no_request_reaches_the_old_code(stack, health):
    """A stopping worker still answered on the router's pooled connections: a second or two of the old code.

    The stack runs one worker. gunicorn forks the new one (which logs "Booting worker" at once, before it
    has loaded the app), then stops the old one, which may still take a request in its last turn of the
    loop; once the old one has said it is exiting, every answer is the new code's.
    """
    for _ in range(6):  # the router pools connections to the running worker
        assert stack.status("/healthz") == 200
    said = ("restarting the workers", "Booting worker", "Worker exiting")
    reloads, boots, exits = (stack.logs().count(line) for line in said)
    health('{"status": "ok", "edit": "no old code"}')
    assert poll(lambda: stack.logs().count("restarting the workers") > reloads, 30), "the save reached web"
    assert poll(lambda: stack.logs().count("Booting worker") > boots, 30), "a new worker runs"
    assert poll(lambda: stack.logs().count("Worker exiting") > exits, 30), "the old worker is gone"
    answers = [stack.api("GET", "/healthz")[1] for _ in range(4)]
    assert answers == [{"status": "ok", "edit": "no old code"}] * 4, answers


def test_a_syntax_error_is_one_line_in_make_logs_and_the_next_good_save_serves(stack, health):
    health('{"status": "broken"')  # the brace is never closed
    assert poll(lambda: "SyntaxError" in stack.logs(), 30)
    assert stack.api("GET", "/healthz") == (200, {"status": "ok"}), "the previous code keeps serving"
    shown = stack.follow_logs("SyntaxError")
    lines = [line for line in shown if "SyntaxError" in line]
    assert len(lines) == 1, "".join(shown)
    assert re.search(r"reload: app/health\.py:\d+: SyntaxError: '\{' was never closed; fix it and save", lines[0])
    health('{"status": "fixed"}')
    assert serves(stack, {"status": "fixed"})


def test_a_module_that_fails_on_import_answers_500_with_the_reason_until_fixed(stack, health):
    health('{"status": undefined_name}')  # compiles; fails only when the view runs, a plain 500
    original = stack.read(HEALTH)
    stack.write(HEALTH, original.replace("bp = Blueprint(", "raise RuntimeError('misconfigured')\nbp = Blueprint(", 1))
    status = poll(lambda: (lambda r: r if r[0] == 500 else None)(stack.api("GET", "/healthz")), 30)
    assert status is not None
    assert "The app failed to load: app/health.py:" in status[1]["error"]["message"]
    assert "RuntimeError: misconfigured" in status[1]["error"]["message"]
    stack.write(HEALTH, original.replace('{"status": undefined_name}', '{"status": "back"}'))
    assert serves(stack, {"status": "back"})


def test_revisions_added_and_deleted_as_on_a_branch_switch_reach_the_running_web(stack):
    versions = stack.directory / "alembic" / "versions"
    new = versions / "2099_01_01_b4a4c4b4a4c4_add_branch_work.py"
    new.write_text(revision_source("b4a4c4b4a4c4", head(), "Add branch work", "pass"))
    try:
        assert poll(lambda: stack.api("GET", "/readyz")[1].get("head") == "b4a4c4b4a4c4", 30)
        # Said in make logs too, by the first worker of the reload.
        assert poll(lambda: "1 pending: b4a4c4b4a4c4" in stack.logs(), 30), stack.logs()[-2000:]
    finally:
        new.unlink()
    assert poll(lambda: stack.api("GET", "/readyz")[1].get("head") == head(), 30), "the deleted file is gone from web"


def test_a_change_to_the_dockerfile_rebuilds_and_restarts_web_by_itself(stack):
    container = stack.container_id()
    dockerfile = stack.read("Dockerfile")
    # Left in place: putting the file back would start another rebuild under the next test.
    stack.write("Dockerfile", dockerfile + "# a comment is enough to make it a new build\n")
    assert poll(lambda: (stack.container_id() or container) != container, 120, 0.5), "web was recreated"
    assert poll(lambda: stack.status("/healthz") == 200, 60)
    assert "Rebuilding service" in (stack.directory / ".run" / "watch.log").read_text()


def test_make_debug_stops_at_a_breakpoint_in_a_view_and_steps_through(stack):
    views = stack.read(HEALTH)
    stack.write(HEALTH, views.replace("    if state.current:\n", "    breakpoint()\n    if state.current:\n", 1))
    answers: dict[str, int] = {}

    def ask_readyz():
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/readyz", timeout=60) as response:
            answers["status"] = response.status

    child = pexpect.spawn("make debug", cwd=str(stack.directory), env=stack.env, encoding="utf-8", timeout=120)
    try:
        child.expect("Booting worker")
        # The router finds the debugged dyno by its name, web.1, within a second or two.
        assert poll(lambda: stack.status("/healthz") == 200, 30)
        threading.Thread(target=ask_readyz, daemon=True).start()
        child.expect(r"\(Pdb\) ")
        child.sendline("p state.revision == state.head")
        child.expect("True")
        child.sendline("next")
        child.expect(r"return body, 200")
        child.sendline("continue")
        assert poll(lambda: answers.get("status"), 30) == 200
        assert stack.has_the_turn(child, "debug"), "make up or make scale in another terminal waits for it"
        stack.write(HEALTH, views)  # the breakpoint taken out while debugging
        child.sendcontrol("c")
        child.expect("starting web again")
        child.expect(pexpect.EOF)
        assert stack.status("/healthz") == 200, "make debug returns once the router reaches web again"
    finally:
        child.close(force=True)
        stack.write(HEALTH, views)
    assert child.exitstatus == 0
    # Web came back on an image built with what was saved while debugging: no breakpoint, no BdbQuit.
    assert stack.status("/readyz") == 200, "web serves what was saved while debugging"


def test_make_debug_without_a_terminal_says_so(stack):
    result = stack.make("debug")
    assert result.returncode != 0
    assert "error: make debug needs a terminal" in result.stderr
