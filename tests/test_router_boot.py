"""While the web dynos boot, Heroku's router holds requests for up to 75 s (H20 after that), and answers H10 at once
only when no dyno is starting at all."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from devtools.docker import docker
from devtools.http import http_raw, poll
from tests.support.docker import shared_app_image
from tests.support.stack import project_stack, router_only, stand_in_dyno

pytestmark = [pytest.mark.docker, pytest.mark.waits]

# A dyno that binds $PORT only once the test creates /tmp/boot, then answers each request with its body.
SLOW_TO_BOOT = """
import http.server, os, time
while not os.path.exists("/tmp/boot"):
    time.sleep(0.05)
class Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200); self.end_headers(); self.wfile.write(b"booted: " + body)
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Echo).serve_forever()
"""
NEVER_BINDS = "import time; time.sleep(300)"


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    with router_only(tmp_path_factory.mktemp("router-boot")) as stack:
        yield stack


def test_a_request_that_comes_as_a_dyno_boots_waits_and_is_served_by_it(router, run_dir):
    """A write included: its body reaches the dyno once it listens, as Heroku's router queues it."""
    dyno = stand_in_dyno(router, shared_app_image(run_dir), 1, SLOW_TO_BOOT)
    request_id = f"boot-{uuid.uuid4().hex}"
    answers: list[tuple[int, dict[str, str], bytes]] = []
    send = threading.Thread(target=lambda: answers.append(
        http_raw(router.port, "POST", "/notes", [("X-Request-Id", request_id)], body=b"kept")))  # fmt: skip
    try:
        assert poll(lambda: router.dyno_status("web.1") == "DOWN", 30), "the router found the dyno, not up yet"
        send.start()
        time.sleep(2)
        assert send.is_alive(), f"answered before the dyno listened: {answers}"
        docker("exec", dyno, "touch", "/tmp/boot")
        send.join(30)
    finally:
        docker("rm", "-f", dyno, check=False)
    [(status, _, body)] = answers
    assert (status, body) == (200, b"booted: kept"), (status, body)
    line = router.router_line(request_id)
    assert line.startswith('at=info method=POST path="/notes"') and " dyno=web.1 " in line, line


def test_no_dyno_up_within_75_s_is_h20_and_no_dyno_starting_is_h10_at_once(router, run_dir):
    assert poll(lambda: router.dyno_status("web.1").startswith("MAINT"), 10), "no dyno from an earlier test"
    time.sleep(3)  # a dyno just gone may be one Compose is replacing: waited for that long
    started = time.monotonic()
    status, _, body = http_raw(router.port, "GET", "/")
    assert status == 503 and b"App crashed (H10)" in body, (status, body)
    assert time.monotonic() - started < 1, "nothing to wait for"

    dyno = stand_in_dyno(router, shared_app_image(run_dir), 1, NEVER_BINDS)
    try:
        assert poll(lambda: router.dyno_status("web.1") == "DOWN", 10), "the router found the dyno, not up"
        request_id = f"boot-timeout-{uuid.uuid4().hex}"
        started = time.monotonic()
        status, headers, body = http_raw(router.port, "GET", "/", [("X-Request-Id", request_id)], timeout=100)
        took = time.monotonic() - started
    finally:
        docker("rm", "-f", dyno, check=False)
    assert status == 503 and b"App boot timeout (H20)" in body and "x-router-error" not in headers, (status, body)
    assert 74 <= took <= 90, took
    line = router.router_line(request_id)
    assert line.startswith('at=error code=H20 desc="App boot timeout" method=GET path="/"'), line
    assert line.endswith(" dyno= connect= service= status=503 bytes= protocol=http"), line


def test_a_configuration_error_reaches_the_routers_log_before_it_exits(tmp_path):
    """HAProxy's last words come through compose/router/states.sed whole, and its exit status with them."""
    with project_stack(tmp_path) as stack:
        stack.env["SECRET_KEY"] = "router-only"
        config = stack.read("compose/router/haproxy.cfg")
        stack.write("compose/router/haproxy.cfg", config.replace("    balance roundrobin\n", "    no-such-keyword\n"))
        assert stack.compose("up", "--detach", "router").returncode == 0

        def exited() -> list[str] | None:
            shown = stack.compose("ps", "--all", "--format", "{{.State}} {{.ExitCode}}", "router").stdout.split()
            return shown if shown[:1] == ["exited"] else None

        ended = poll(exited, 30)
        said = stack.logs("router")
    assert ended and ended[1] != "0", ended
    assert "[ALERT]" in said and "'no-such-keyword'" in said, said
