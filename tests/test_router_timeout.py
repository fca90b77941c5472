"""Heroku's request timeouts through the router: 30 s for the dyno (H12), 55 s for the client (H28)."""

from __future__ import annotations

import http.client
import re
import socket
import time
import uuid

import pytest

from devtools.docker import docker
from devtools.http import http_raw, poll
from tests.support.docker import shared_app_image
from tests.support.stack import router_only, stand_in_dyno

pytestmark = [pytest.mark.docker, pytest.mark.waits]

SLOW_DYNO = """
import http.server, os, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(40)
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Slow).serve_forever()
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    with router_only(tmp_path_factory.mktemp("router-only")) as stack:
        yield stack


def answers(port: str) -> bool:
    """Whether GET /healthz through the router answers 200 (False while the router does not listen yet)."""
    try:
        return http_raw(port, "GET", "/healthz")[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def test_a_request_with_no_dyno_to_take_it_is_h10_with_the_dyno_fields_empty(router):
    """Heroku's router writes dyno=, connect=, service= and bytes= empty when no dyno saw the request."""
    request_id = f"no-dyno-{uuid.uuid4().hex}"

    def crashed() -> bool:
        try:
            return http_raw(router.port, "GET", "/", [("X-Request-Id", request_id)])[0] == 503
        except (OSError, http.client.HTTPException):
            return False  # the router does not listen yet

    assert poll(crashed, 30), "the router answers 503 with no dyno up"
    lines = poll(lambda: [line for line in router.logs("router").splitlines() if request_id in line], 10)
    assert lines[-1].startswith('at=error code=H10 desc="App crashed" method=GET path="/"'), lines
    assert lines[-1].endswith(" dyno= connect= service= status=503 bytes= protocol=http"), lines


def test_no_first_byte_within_30_s_is_h12_and_no_whole_request_within_55_s_is_h28(router, run_dir):
    """A test-only dyno that never answers /slow stands in for web.1 behind the router."""
    slow = stand_in_dyno(router, shared_app_image(run_dir), 1, SLOW_DYNO)
    try:
        assert poll(lambda: answers(router.port), 30), "the router found the slow dyno"
        # Meanwhile a client that never sends the rest of its body (H28 at 55 s: waited for below).
        idle = socket.create_connection(("127.0.0.1", int(router.port)), timeout=70)
        idle.sendall(b"POST /idle HTTP/1.1\r\nHost: idle\r\nContent-Length: 100\r\n\r\n{")
        idle_since = time.monotonic()
        request_id = f"slow-{uuid.uuid4().hex}"
        started = time.monotonic()
        status, headers, body = http_raw(router.port, "GET", "/slow", [("X-Request-Id", request_id)])
        took = time.monotonic() - started
    finally:
        docker("rm", "-f", slow, check=False)
    assert status == 503 and b"Request timeout" in body and "x-router-error" not in headers
    assert 29 <= took <= 45, took
    line = router.router_line(request_id)
    assert line.startswith('at=error code=H12 desc="Request timeout" method=GET path="/slow"')
    assert re.search(r" dyno=web\.1 connect=\d+ms service=3\d{4}ms status=503 bytes=0 protocol=http$", line), line

    with idle:
        answer = idle.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"Client Connection Idle (H28)" in answer, answer
    assert 54 <= time.monotonic() - idle_since <= 65
    line = router.router_line('path="/idle"')
    assert line.startswith('at=error code=H28 desc="Client Connection Idle" method=POST path="/idle"'), line
    assert line.endswith(" dyno= connect= service= status=408 bytes= protocol=http"), "no dyno ever saw it: empty"
