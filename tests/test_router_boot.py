"""While the web dynos boot, Heroku's router holds requests for up to 75 s (H20 after that), and answers H10 at once
only when no dyno is starting at all."""

from __future__ import annotations

import time
import uuid

import pytest

from devtools.docker import docker
from devtools.http import http_raw, poll
from tests.support.docker import shared_app_image
from tests.support.stack import router_only, stand_in_dyno

pytestmark = [pytest.mark.docker, pytest.mark.waits]

# A dyno that takes 4 s to bind $PORT, then answers each request with the body it was sent.
SLOW_TO_BOOT = """
import http.server, os, time
time.sleep(4)
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


def router_line(router, request_id: str) -> str:
    [line] = poll(lambda: [line for line in router.logs("router").splitlines() if request_id in line], 10)
    return line


def test_a_request_that_comes_as_a_dyno_boots_waits_and_is_served_by_it(router, run_dir):
    """A write included: its body reaches the dyno once it listens, as Heroku's router queues it."""
    dyno = stand_in_dyno(router, shared_app_image(run_dir), 1, SLOW_TO_BOOT)
    try:
        assert poll(lambda: router.dyno_status("web.1") == "DOWN", 10), "the router found the dyno, not up yet"
        request_id = f"boot-{uuid.uuid4().hex}"
        started = time.monotonic()
        status, _, body = http_raw(router.port, "POST", "/notes", [("X-Request-Id", request_id)], body=b"kept")
        took = time.monotonic() - started
    finally:
        docker("rm", "-f", dyno, check=False)
    assert (status, body) == (200, b"booted: kept"), (status, body)
    assert took > 1, f"answered in {took:.1f} s, before the dyno could listen"
    line = router_line(router, request_id)
    assert line.startswith('at=info method=POST path="/notes"') and " dyno=web.1 " in line, line


def test_no_dyno_up_within_75_s_is_h20_and_no_dyno_starting_is_h10_at_once(router, run_dir):
    assert poll(lambda: router.dyno_status("web.1").startswith("MAINT"), 10), "no dyno from an earlier test"
    started = time.monotonic()
    status, _, body = http_raw(router.port, "GET", "/")
    assert status == 503 and b"App crashed (H10)" in body, (status, body)
    assert time.monotonic() - started < 3, "nothing to wait for"

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
    line = router_line(router, request_id)
    assert line.startswith('at=error code=H20 desc="App boot timeout" method=GET path="/"'), line
    assert line.endswith(" dyno= connect= service= status=503 bytes= protocol=http"), line
