"""Heroku's router, dynos and TLS database in the Compose stack, through the ports a user's browser uses."""

from __future__ import annotations

import http.client
import itertools
import json
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from devtools.docker import docker
from devtools.http import http_raw, poll
from localstack import dyno_types
from tests.support.stack import COMPOSE, compose_services, project_stack

pytestmark = pytest.mark.docker

# A test-only view in the stack's copy: what the app sees of a request.
ECHO_VIEW = '''

@bp.get("/_seen")
def seen():
    """Return what the app sees of this request (test-only)."""
    from flask import request

    return {"headers": dict(request.headers), "remote_addr": request.remote_addr, "url": request.url}


@bp.get("/_cookie/<int:size>")
def cookie(size):
    """Set a cookie whose value is ``size`` bytes (test-only)."""
    from flask import Response

    response = Response("{}", mimetype="application/json")
    response.headers["Set-Cookie"] = "c=" + "x" * (size - 2)
    return response


@bp.route("/_die/<marker>", methods=["POST", "DELETE"])
def die(marker):
    """Say so, then end this worker without an answer, as a crash or the kernel's OOM kill would (test-only)."""
    import os
    import sys

    print(f"dying on {marker}", file=sys.stderr, flush=True)
    os._exit(1)
'''


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with project_stack(tmp_path_factory.mktemp("router")) as stack:
        stack.write("app/health.py", stack.read("app/health.py") + ECHO_VIEW)
        stack.up()
        yield stack


def seen(stack, tls: bool = False, headers=()) -> dict:
    status, _, body = http_raw(stack.tls_port if tls else stack.port, "GET", "/_seen", headers, tls=tls)
    assert status == 200, body
    return json.loads(body)


def routed(stack) -> bool:
    """Whether GET /healthz answers 200 through the router (False while it starts or finds the dynos)."""
    try:
        return http_raw(stack.port, "GET", "/healthz")[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def router_lines(stack) -> list[str]:
    return [line for line in stack.logs("router").splitlines() if line.startswith(("at=", "sock="))]


def test_the_app_gets_herokus_headers_on_each_port(stack):
    before = time.time() * 1000
    for tls, port, proto in ((False, stack.port, "http"), (True, stack.tls_port, "https")):
        got = seen(stack, tls, [("X-Forwarded-For", "203.0.113.9")])
        headers = got["headers"]
        client = headers["X-Forwarded-For"].split(", ")[-1]
        assert headers["X-Forwarded-For"] == f"203.0.113.9, {client}", "the client is appended"
        assert got["remote_addr"] == client, "ProxyFix trusts one hop: the router's"
        assert headers["X-Forwarded-Proto"] == proto
        assert headers["X-Forwarded-Port"] == port
        assert got["url"] == f"{proto}://127.0.0.1:{port}/_seen"
        assert before - 1000 <= int(headers["X-Request-Start"]) <= time.time() * 1000 + 1000
        assert headers["Via"] == "1.1 vegur"
        uuid.UUID(headers["X-Request-Id"])


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("my-trace-id-0123456789", True),
        ("a" * 200, True),
        ("abc+/=-" * 4, True),
        ("a" * 19, False),
        ("a" * 201, False),
        ("has space in it, 20+ chars", False),
        ("comma,separated,values,1", False),
    ],
)
def test_a_clients_request_id_is_kept_only_when_heroku_would_keep_it(stack, sent, kept):
    got = seen(stack, headers=[("X-Request-Id", sent)])["headers"]["X-Request-Id"]
    if kept:
        assert got == sent
    else:
        assert got != sent
        uuid.UUID(got)


def logged_by_both(stack, marker: str) -> tuple[list[str], list[str]]:
    """Wait (10 s at most) until the router's log and web's both hold ``marker``; return their lines that do."""

    def both():
        router = [line for line in router_lines(stack) if marker in line]
        app = [line for line in stack.logs("web").splitlines() if marker in line]
        return router and app and (router, app)

    found = poll(both, 10)
    assert found, f"{marker} is not in both logs"
    return found


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_request_whose_worker_died_is_run_once_and_answered_h13_unless_it_only_reads(stack, method):
    """A dyno that closes a pooled connection as it stops is why the router sends a request again after no
    answer; one that changes data may have run, so it never is: the client gets H13, as on Heroku's router."""
    marker = uuid.uuid4().hex
    status, _, body = http_raw(stack.port, method, f"/_die/{marker}")
    assert status == 503 and b"Connection closed without response" in body, body
    [router], _ = logged_by_both(stack, marker)
    assert f'at=error code=H13 desc="Connection closed without response" method={method} path="/_die/{marker}"' in (
        router
    )
    assert re.search(r" dyno=web\.\d+ connect=\d+ms service=\d+ms status=503 bytes=0 protocol=http$", router), (
        "as Heroku's: no byte came from the dyno"
    )
    time.sleep(1)  # any attempt came before the router's line; its words may reach the log a little later
    ran = [line for line in stack.logs("web").splitlines() if f"dying on {marker}" in line]
    assert len(ran) == 1, ran


def test_one_request_id_follows_a_request_from_router_to_app(stack):
    request_id = f"follow-me-{uuid.uuid4().hex}"
    status, headers, _ = http_raw(stack.port, "GET", "/healthz", [("X-Request-Id", request_id)])
    assert status == 200 and headers["via"] == "1.1 vegur"

    [router, *_], [app, *_] = logged_by_both(stack, f"request_id={request_id}")
    assert re.fullmatch(
        r'at=info method=GET path="/healthz" host=127\.0\.0\.1:\d+ request_id=\S+ fwd="[\d.]+" dyno=web\.1 '
        r"connect=\d+ms service=\d+ms status=200 bytes=\d+ protocol=http",
        router,
    ), router
    assert re.fullmatch(
        r'method=GET path="/healthz" status=200 bytes=\d+ duration=\d+ms request_id=\S+ fwd="[\d., ]+"', app
    )


def test_only_a_probe_of_a_health_page_is_left_out_of_the_logs(stack):
    """make up's probes say User-Agent: healthcheck; a client saying so elsewhere is still logged, by both."""
    marker = uuid.uuid4().hex
    probe, sent = f"probe-{marker}-0123456789", f"claims-{marker}-0123456789"
    assert http_raw(stack.port, "GET", "/healthz", [("User-Agent", "healthcheck"), ("X-Request-Id", probe)])[0] == 200
    headers = [("User-Agent", "healthcheck"), ("X-Request-Id", sent), ("Content-Type", "application/json")]
    assert http_raw(stack.port, "POST", "/tokens", headers, b'{"email": "a@example.com", "password": "x"}')[0] == 401

    router, app = logged_by_both(stack, marker)  # the request that said User-Agent: healthcheck is in both
    assert [sent in line for line in router] == [True] and [sent in line for line in app] == [True], (router, app)


def test_what_a_client_sends_is_logged_as_sent_and_cannot_forge_a_line(stack):
    """The path as sent (query too, as Heroku logs it), the client's X-Forwarded-For escaped; a bad Host is a 400."""
    request_id = f"forge-{uuid.uuid4().hex}"
    forged = "/x%0Amethod=DELETE%20path=%22/locations/1%22%1B[31m?token=%0A"
    headers = [("X-Request-Id", request_id), ("X-Forwarded-For", 'a" b\\')]
    assert http_raw(stack.port, "GET", forged, headers)[0] == 404

    [router], [app] = logged_by_both(stack, f"request_id={request_id}")
    assert f'path="{forged}" ' in router, router
    assert app.startswith(f'method=GET path="{forged}" status=404 '), app
    assert ' fwd="a\\" b\\\\, ' in app, app

    for host in ("x at=info method=GET", ""):
        assert http_raw(stack.port, "GET", "/healthz", [("Host", host)])[0] == 400, host

    # A quote and a final backslash sent raw, as HAProxy takes them: the path field still ends where it should.
    raw = f'/x"y/{request_id}\\'
    assert http_raw(stack.port, "GET", raw, [("X-Request-Id", f"{request_id}-raw")])[0] == 404
    [line] = poll(lambda: [line for line in router_lines(stack) if f"request_id={request_id}-raw" in line], 10)
    assert re.match(r'at=info method=GET path="(?:[^"\\]|\\.)*" host=127\.0\.0\.1:\d+ request_id=', line), line


def test_created_location_points_at_itself_with_the_scheme_and_port_it_came_through(stack):
    token = stack.sign_up("router@example.com")
    place = json.dumps({"name": "Here", "latitude": 1, "longitude": 2}).encode()
    for tls, port, proto in ((False, stack.port, "http"), (True, stack.tls_port, "https")):
        headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
        # Heroku's router sets no X-Forwarded-Host: one can only be the client's, and is not believed.
        headers.append(("X-Forwarded-Host", "evil.example"))
        status, answered, body = http_raw(port, "POST", "/locations", headers, place, tls=tls)
        assert status == 201
        assert answered["location"] == f"{proto}://127.0.0.1:{port}/locations/{json.loads(body)['id']}"


@pytest.mark.parametrize(
    ("case", "path", "headers"),
    [
        ("request line", "/healthz?" + "a" * (8193 - len("GET /healthz? HTTP/1.1")), []),
        ("header line", "/healthz", [("X-Big", "a" * (8193 - len("X-Big: ")))]),
        ("1,001 headers", "/healthz", [(f"X-Header-{i}", "v") for i in range(1001)]),
    ],
)
def test_requests_over_herokus_limits_are_400_from_the_router(stack, case, path, headers):
    request_id = f"too-big-{uuid.uuid4().hex}"
    status, _, _ = http_raw(stack.port, "GET", path, [("X-Request-Id", request_id), *headers])
    assert status == 400, case
    [line] = poll(lambda: [line for line in router_lines(stack) if request_id in line], 10)
    assert line.startswith('at=error code=H26 desc="Request Error" method=GET'), line
    assert line.endswith(" dyno= connect= service= status=400 bytes= protocol=http"), "no dyno saw it: empty"
    assert request_id not in stack.logs("web"), "the app never saw it"


def test_at_the_limits_the_request_reaches_the_app(stack):
    # gunicorn applies its own, stricter limits (414/431), as it does on Heroku.
    line = http_raw(stack.port, "GET", "/healthz?" + "a" * (8192 - len("GET /healthz? HTTP/1.1")))[0]
    header = http_raw(stack.port, "GET", "/healthz", [("X-Big", "a" * (8192 - len("X-Big: ")))])[0]
    assert (line, header) == (414, 431)
    # The limit is 1,000 header lines, not values: one line may list many, separated by commas.
    listed = http_raw(stack.port, "GET", "/healthz", [("If-None-Match", ", ".join(f'"{n}"' for n in range(1001)))])
    assert listed[0] == 200, listed


def test_a_response_that_sets_a_cookie_over_8192_bytes_is_502_and_h25_as_on_heroku(stack):
    """A session cookie that grew past Heroku's limit works locally only if the router lets it through."""
    assert http_raw(stack.port, "GET", "/_cookie/8192")[0] == 200, "at the limit it passes"
    request_id = f"big-cookie-{uuid.uuid4().hex}"
    status, headers, body = http_raw(stack.port, "GET", "/_cookie/8193", [("X-Request-Id", request_id)])
    assert status == 502 and "set-cookie" not in headers and b"oversized cookie (H25)" in body, (status, headers)
    [line] = poll(lambda: [line for line in router_lines(stack) if request_id in line], 10)
    assert line.startswith('at=error code=H25 desc="HTTP restriction: oversized cookie" method=GET'), line
    assert re.search(r" dyno=web\.1 connect=\d+ms service=\d+ms status=502 bytes=0 protocol=http$", line), line


def test_an_upload_over_the_apps_limit_costs_no_other_request(stack):
    """gunicorn closes a connection after a 413 it cannot drain: the router must not hand it to the next client."""
    token = stack.sign_up("uploads@example.com")
    headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
    too_big = b"[" * 100_000
    just_under = json.dumps({"name": "n", "latitude": 0, "longitude": 0}).encode() + b" " * 60_000
    answered = [
        (http_raw(stack.port, "POST", "/locations", headers, too_big)[0],
         http_raw(stack.port, "POST", "/locations", headers, just_under)[0])
        for _ in range(25)
    ]  # fmt: skip
    assert set(answered) == {(413, 201)}, answered


def test_clients_slow_to_send_a_body_hold_no_dyno_thread_and_leaving_is_h27(stack):
    """The router takes the body before it picks a dyno, as Heroku's buffers it: the dyno stays free.

    A client that leaves before its request is all sent is logged as Heroku logs it: H27, status 499.
    """
    marker = f"left-{uuid.uuid4().hex}"
    # Twice the stack's threads (one worker of four): without buffering, each would hold one for 30 s.
    slow = [socket.create_connection(("127.0.0.1", int(stack.port)), timeout=10) for _ in range(8)]
    try:
        for n, client in enumerate(slow):
            head = f"POST /tokens HTTP/1.1\r\nHost: slow\r\nX-Request-Id: {marker}-{n}\r\nContent-Length: 100\r\n\r\n"
            client.sendall(head.encode() + b'{"email"')
        time.sleep(1)
        started = time.monotonic()
        assert http_raw(stack.port, "GET", "/healthz")[0] == 200
        # Behind them it would wait out their 30 s; a loaded machine may take a second or two anyway.
        assert time.monotonic() - started < 5, "a request waited behind the slow clients"
    finally:
        for client in slow:
            client.close()
    left = poll(lambda: len(lines := [line for line in router_lines(stack) if marker in line]) == 8 and lines, 10)
    assert left, "each client that left has its line"
    for line in left:
        assert line.startswith('sock=client at=warning code=H27 desc="Client Request Interrupted" method=POST '), line
        assert line.endswith(" dyno= connect= service= status=499 bytes= protocol=http"), "no dyno saw it: empty"


def test_every_app_connection_to_the_database_uses_tls(stack):
    assert stack.api("GET", "/readyz")[0] == 200
    query = (
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
        " WHERE a.datname = 'app' AND a.backend_type = 'client backend' AND a.client_addr IS NOT NULL"
    )
    total, encrypted = map(int, stack.psql(query).split("|"))
    assert total >= 1 and encrypted == total
    status = stack.make("status")  # a one-off container, as `heroku run`: TLS too, and it works
    assert status.returncode == 0 and "Current revision" in status.stdout


def web_containers(stack) -> list[dict]:
    ids = stack.compose("ps", "-q", "web").stdout.split()
    return json.loads(docker("inspect", *ids).stdout) if ids else []


SAVED_VIEW = '''

@bp.get("/_saved")
def saved():
    """A view saved after make up: live reload copies it into the running web (test-only)."""
    return {"saved": True}
'''


def memory_quota(dyno: dict[str, Any]) -> str:
    """Return the dyno size's memory a dyno was given (DYNO_MEMORY), which its R14 lines are measured against."""
    [quota] = [pair.split("=", 1)[1] for pair in dyno["Config"]["Env"] if pair.startswith("DYNO_MEMORY=")]
    return quota


def test_scaled_dynos_share_the_traffic_and_each_has_its_name_and_memory_limit(stack):
    limit = stack.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'dyno'")
    assert limit == "20", "Heroku's Essential plans take 20 connections of the app's credential"
    # Saved after make up, so only live reload has it in web.1: the dynos added must serve it too.
    stack.write("app/health.py", stack.read("app/health.py") + SAVED_VIEW)
    assert poll(lambda: stack.status("/_saved") == 200, 30)
    # 3 dynos x 1 worker x 8 threads can hold 24 connections: more than the database takes.
    scaled = stack.make("scale", "web=3", GUNICORN_THREADS="8")
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    assert "==> web holds code live reload copied into it: building the image first" in scaled.stdout
    assert (
        "==> note: 3 dynos x 1 workers x 8 threads can hold 24 database connections at once; the database "
        "takes 20 " in scaled.stdout
    ), scaled.stdout
    dynos = web_containers(stack)
    assert len(dynos) == 3
    assert {memory_quota(d) for d in dynos} == {"512m"}, "standard-1x: 512 MB, R14 over it"
    assert {d["HostConfig"]["Memory"] for d in dynos} == {1024 * 2**20}, "a hard limit at twice that, R15's point"
    assert {d["HostConfig"]["MemorySwap"] for d in dynos} == {1024 * 2**20}, "and no swap"
    names = {f"web.{n}" for n in (1, 2, 3)}
    assert poll(lambda: {name for name in names if f"dyno {name} is up" in stack.logs("web")} == names, 30)

    # The router finds new dynos by DNS and a connect check, each every second: ask until all three have served.
    marker, numbers = uuid.uuid4().hex, itertools.count()

    def served() -> set[str]:
        for i in itertools.islice(numbers, 9):
            assert http_raw(stack.port, "GET", "/_saved", [("X-Request-Id", f"spread-{marker}-{i:04d}")])[0] == 200
        return {re.search(r"dyno=(\S+)", line).group(1) for line in router_lines(stack) if marker in line}

    assert poll(lambda: served() == names, 30), "requests through the router did not reach all three dynos"
    up = stack.make("up", GUNICORN_THREADS="8")  # with WEB_SCALE=3 in .env, as make scale left it
    assert up.returncode == 0 and "==> note: 3 dynos x 1 workers x 8 threads can hold 24 " in up.stdout, up.stdout

    ps = stack.make("ps").stdout
    for name in sorted(names):
        assert re.search(rf"^{re.escape(name)}: up \d{{4}}/.* memory \d+ MB \(.*\) of 512 MB$", ps, re.M), ps
    # The figure is the one docker stats gives (a gunicorn dyno moves by a few MB at most meanwhile).
    shown = int(re.search(r"^web\.1: .* memory (\d+) MB", ps, re.M).group(1))
    stats = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", f"{stack.name}-web-1").stdout
    assert abs(shown - float(re.match(r"([\d.]+)MiB", stats).group(1))) < 8, (ps, stats)


def test_make_ps_read_in_part_is_no_failure(stack):
    """make ps | head: the reader has all it wanted, and make says nothing of a broken pipe."""
    piped = subprocess.run(["bash", "-c", "make ps | head -n 1; exit ${PIPESTATUS[0]}"], cwd=stack.directory,
                           env=stack.env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert piped.returncode == 0 and piped.stdout.startswith("=== web ("), piped.stdout + piped.stderr
    assert "Broken pipe" not in piped.stderr, piped.stderr


@contextmanager
def under_load(stack) -> Iterator[list[int | str]]:
    """Send reads and writes through the router from four threads while the block runs, a second either side.

    Yields the list the outcomes go into: 200 for each request the app answered as it should (a read with
    200, a sign-in without credentials with 422), else what came instead.
    """
    statuses: list[int | str] = []
    stop = threading.Event()
    requests = [("GET", "/readyz", None, 200), ("POST", "/tokens", b"{}", 422)]

    def load(method: str, path: str, body: bytes | None, answer: int) -> None:
        while not stop.is_set():
            try:
                status, _, said = http_raw(stack.port, method, path, body=body)
                statuses.append(200 if status == answer else f"{method} {status} {said[:300]!r}")
            except OSError as exc:
                statuses.append(repr(exc))
            time.sleep(0.01)  # steady load, at a CPU cost the other tests can bear

    threads = [threading.Thread(target=load, args=requests[n % 2]) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        yield statuses
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def test_scaling_down_under_load_loses_no_request(stack):
    """Reads and writes: the router sends a write only once, so the dynos that go must get none as they stop."""
    assert stack.make("scale", "web=3").returncode == 0
    with under_load(stack) as statuses:
        scaled = stack.make("scale", "web=1")
    assert scaled.returncode == 0, scaled.stderr
    assert len(web_containers(stack)) == 1
    assert len(statuses) > 50 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


def test_make_scale_ends_a_drain_an_earlier_one_could_not_undo(stack):
    """make scale drains the dynos that go and then makes every server ready: one killed in between left a
    drained web.1, which got no requests until make down. The next make scale ends it."""
    assert stack.make("scale", "web=1").returncode == 0
    assert stack.router_admin("set server web/web.1 state drain").strip() == ""
    assert stack.dyno_status("web.1") == "DRAIN", "as a make scale killed outright leaves it"
    # A request waits for a dyno, as while web boots (H20 after 75 s): here, for no answer within 5 s.
    assert stack.status("/healthz") is None
    scaled = stack.make("scale", "web=1")
    assert scaled.returncode == 0 and "note: the router could not be told" not in scaled.stderr, scaled.stderr
    assert poll(lambda: stack.status("/healthz") == 200, 10)


def test_ctrl_c_in_make_scale_says_what_it_left_and_keeps_env(stack):
    """The cue comes just before .env is rewritten: the Ctrl-C lands as it is."""
    settings = [line for line in stack.read(".env").splitlines() if not line.startswith("WEB_SCALE=")]
    # What .env asked for before (a test before this one may have left 3): the count kept, or the new one.
    before = re.findall(r"^WEB_SCALE=(\d+)$", stack.read(".env"), re.MULTILINE)[-1:] or ["1"]
    try:
        stopped = stack.interrupt("==> scaling web dynos to 2", "scale", "web=2")
        kept = rf"error: interrupted \(Ctrl-C\): \.env asks for web=({before[0]}|2) \(make up brings"
        assert re.search(kept, stopped.stderr), stopped.stderr
        # make says Interrupt, not Error; under load GNU make's own race may say "wait: No child processes" instead.
        interrupted = "] Interrupt" in stopped.stderr or "wait: No child processes" in stopped.stderr
        assert interrupted and "Error" not in stopped.stderr, stopped.stderr
        assert [line for line in stack.read(".env").splitlines() if not line.startswith("WEB_SCALE=")] == settings
    finally:
        assert stack.make("scale", "web=1").returncode == 0
    assert len(web_containers(stack)) == 1


def test_make_logs_follows_on_past_one_off_dynos_that_end_as_it_attaches_and_ends_on_ctrl_c(stack):
    """Compose stopped with "can not get logs from container which is dead" when a one-off (make run, make
    status) was gone before it attached: the tail a user keeps open all day ended with it. Ctrl-C still ends
    it: Compose exits 130 on it, not 1."""
    request_id = f"after-one-offs-{uuid.uuid4().hex}"

    def one_offs_then_a_request() -> None:
        time.sleep(2)  # make logs is following the stack
        for _ in range(5):
            assert stack.compose("run", "--rm", "--no-deps", "web", "true").returncode == 0
        http_raw(stack.port, "GET", "/healthz", [("X-Request-Id", request_id)])

    shown = stack.follow_logs(f"request_id={request_id}", meanwhile=one_offs_then_a_request, stop=signal.SIGINT)
    assert any(f"request_id={request_id}" in line for line in shown), "".join(shown[-20:])


def test_make_logs_follows_one_dyno_or_one_service_as_heroku_logs_dyno_does(stack):
    """make logs dyno=web.2 shows that dyno's lines alone; dyno=router the router's alone."""
    try:
        assert stack.make("scale", "web=2").returncode == 0
        marker, numbers = uuid.uuid4().hex, itertools.count()

        def served_by_web_2() -> set[str]:
            """The ids of the requests the router's lines say web.2 served."""
            lines = [line for line in router_lines(stack) if marker in line]
            return {re.search(r"request_id=(\S+)", line).group(1) for line in lines if "dyno=web.2 " in line}

        def send() -> set[str]:
            for i in itertools.islice(numbers, 4):
                http_raw(stack.port, "GET", "/healthz", [("X-Request-Id", f"logs-{marker}-{i:04d}")])
            return served_by_web_2()

        assert poll(send, 30), "no request through the router reached web.2"
        time.sleep(0.5)  # the router writes its lines in batches: let the last ones in
        ids = served_by_web_2()
        shown = stack.follow_logs(sorted(ids)[-1], "dyno=web.2")
        seen = {i for line in shown for i in re.findall(rf"request_id=(logs-{marker}-\d+)", line)}
        assert seen == ids, ("web.2's own lines show the requests it served, and no others", ids, shown)
        assert not [line for line in shown if line.startswith(("web-1 ", "router-1 ", "watch "))], shown

        routed = stack.follow_logs(marker, "dyno=router")
        others = [line for line in routed if line.strip() and not line.startswith(("router-1  | ", "make: "))]
        assert routed and not others, others

        wrong = stack.make("logs", "dyno=wbe")
        services = ", ".join(sorted(compose_services(stack.env, directory=stack.directory)))
        assert wrong.returncode != 0 and wrong.stderr.startswith(
            f"error: no dyno type or service wbe: make logs dyno=web (or web.1, or one of {services})\n"
        ), wrong.stderr
    finally:
        stack.make("scale", "web=1")


RESTARTED_VIEW = '''

@bp.get("/_restarted")
def restarted():
    """A view saved before make restart (test-only)."""
    return {"restarted": True}
'''


def test_make_restart_starts_each_dyno_afresh_with_a_new_filesystem_as_heroku_ps_restart(stack):
    """What a dyno wrote to its disk is gone after a restart, as on Heroku; one dyno of several is refused, not
    renumbered."""
    try:
        assert stack.make("scale", "web=2").returncode == 0
        before = {d["Name"]: d["Id"] for d in web_containers(stack)}
        for name in before:
            assert docker("exec", name.lstrip("/"), "sh", "-c", "echo kept > /tmp/upload").returncode == 0

        alone = stack.make("restart", "dyno=web.2")
        assert alone.returncode != 0 and alone.stderr.splitlines()[0] == (
            "error: web.2 cannot restart alone here (Compose would start it as web.3): "
            "make restart dyno=web restarts every web dyno"
        )
        types = ", ".join(dyno_types())  # web, and any of yours
        for wrong, said in (
            ("web.7", "error: no dyno web.7 runs: make ps lists them\n"),
            ("wbe", f"error: no dyno type wbe in the Procfile; its dyno types are {types}: make restart\n"),
            (".1", f"error: no dyno type '' in the Procfile; its dyno types are {types}: make restart\n"),
            ("release", "error: release runs once per deploy (make up runs it), not as dynos; its dyno types are "),
            ("migrate", "error: migrate runs as a one-off process (bin/oneoff), not as dynos; its dyno types are "),
        ):
            refused = stack.make("restart", f"dyno={wrong}")
            assert refused.returncode != 0 and refused.stderr.startswith(said), refused.stderr
        assert {d["Id"] for d in web_containers(stack)} == set(before.values()), "a refusal restarts nothing"

        # Saved now, so only live reload has it in the dynos: they restart on it, not on the image's older code.
        stack.write("app/health.py", stack.read("app/health.py") + RESTARTED_VIEW)
        assert poll(lambda: stack.status("/_restarted") == 200, 30)
        alone = stack.make("restart", "dyno=web.1")
        assert alone.returncode != 0 and "building" not in alone.stdout, "refused before the image is built"
        # Every web dyno at once: requests meanwhile wait for the new ones, as Heroku's router holds them.
        logged = len(stack.logs("router").splitlines())
        with under_load(stack) as statuses:
            restarted = stack.make("restart", "dyno=web")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert len(statuses) > 50 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
        # What the router said of it: a plain line per change, none of HAProxy's WARNING and ALERT lines.
        said = [line for line in stack.logs("router").splitlines()[logged:] if not line.startswith("at=")]
        assert {f"web.{n} is drained: it gets no new requests" for n in (1, 2)} <= set(said), said
        assert not [line for line in said if line.startswith(("[WARNING]", "[ALERT]"))], said
        assert "==> web holds code live reload copied into it: building the image first" in restarted.stdout
        assert "==> restarted web.1, web.2\n" in restarted.stdout, restarted.stdout
        assert stack.status("/_restarted") == 200, "make restart returns once web serves the code saved"
        after = {d["Name"]: d["Id"] for d in web_containers(stack)}
        assert after.keys() == before.keys() and not set(after.values()) & set(before.values()), (before, after)
        for name in after:
            assert docker("exec", name.lstrip("/"), "test", "-e", "/tmp/upload", check=False).returncode == 1
    finally:
        stack.make("scale", "web=1")


def test_another_dyno_size_gets_its_memory(stack):
    """And scaling down as the size changes leaves web.1, as on Heroku (Compose alone could keep any one)."""
    try:
        assert stack.make("scale", "web=3").returncode == 0
        assert stack.make("scale", "web=1", DYNO_SIZE="standard-2x").returncode == 0
        [dyno] = web_containers(stack)
        assert (memory_quota(dyno), dyno["HostConfig"]["Memory"]) == ("1024m", 2048 * 2**20)
        assert dyno["Name"] == f"/{stack.name}-web-1"
        wrong = stack.make("scale", "web=1", DYNO_SIZE="huge")
        assert wrong.returncode != 0 and "error: DYNO_SIZE=huge is not a Heroku dyno size" in wrong.stderr
    finally:
        stack.make("scale", "web=1")


def test_make_up_with_fewer_dynos_in_env_and_a_changed_setting_leaves_web_1(stack):
    """.env lowered by hand (or by a branch switch) as a setting changes: make up keeps web.1 too."""
    try:
        assert stack.make("scale", "web=3").returncode == 0
        stack.write(".env", re.sub(r"(?m)^WEB_SCALE=.*$", "WEB_SCALE=1", stack.read(".env")))
        up = stack.make("up", DYNO_SIZE="standard-2x")
        assert up.returncode == 0, up.stdout + up.stderr
        [dyno] = web_containers(stack)
        assert (dyno["Name"], memory_quota(dyno)) == (f"/{stack.name}-web-1", "1024m")
    finally:
        stack.make("scale", "web=1")


def test_make_up_restarts_the_router_when_its_configuration_changed_and_only_then(stack):
    """Compose mounts compose/router: an edited haproxy.cfg takes effect at the next make up."""

    def router_id() -> str:
        return docker("inspect", "--format", "{{.Id}}", f"{stack.name}-router-1").stdout.strip()

    config = stack.read("compose/router/haproxy.cfg")
    before = router_id()
    assert stack.make("up").returncode == 0
    assert router_id() == before, "an unchanged configuration keeps the router and its connections"
    stack.write("compose/router/haproxy.cfg", config.replace("timeout queue 30s", "timeout queue 29s"))
    try:
        up = stack.make("up")
        assert up.returncode == 0, up.stderr
        assert router_id() != before, "the router runs the configuration as edited"
        assert seen(stack)["headers"]["Via"] == "1.1 vegur"
    finally:
        stack.write("compose/router/haproxy.cfg", config)
        assert stack.make("up").returncode == 0


def test_a_stopping_router_logs_the_requests_it_lets_finish_and_exits_without_a_kill(stack):
    """Log lines reach stdout in batches (compose/router/log-lines.lua): none is lost when the router stops.

    A request still being sent when the router is told to stop is served,
    and logged; the router then exits by itself, well before Docker's SIGKILL.
    """
    marker = f"stopping-{uuid.uuid4().hex}"
    body = b'{"email": "late@example.com", "password": "a long password"}'
    stops = stack.logs("router").count("Exiting Master process")
    client = socket.create_connection(("127.0.0.1", int(stack.port)), timeout=30)
    try:
        head = f"POST /tokens HTTP/1.1\r\nHost: late\r\nX-Request-Id: {marker}\r\nContent-Length: {len(body)}\r\n"
        client.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + body[:10])
        started = time.monotonic()
        stopping = subprocess.Popen([*COMPOSE, "stop", "--timeout", "30", "router"], cwd=stack.directory,
                                    env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        # The rest of the body only once HAProxy has begun to stop (it says so as it does).
        assert poll(lambda: stack.logs("router").count("Exiting Master process") > stops, 20)
        client.sendall(body[10:])
        answer = client.recv(4096).decode()
        assert stopping.wait(40) == 0
        took = time.monotonic() - started
    finally:
        client.close()
        stack.compose("start", "router")
        assert poll(lambda: routed(stack), 30), "the router serves again, for the tests after this one"
    assert answer.startswith("HTTP/1.1 401 "), answer
    assert took < 10, f"the router took {took:.1f} s to stop (Docker kills it at 30 s)"
    lines = [line for line in stack.logs("router").splitlines() if marker in line]
    assert len(lines) == 1 and " method=POST " in lines[0] and " status=401 " in lines[0], lines


def test_make_down_lets_requests_in_flight_finish(stack):
    credentials = {"email": "inflight@example.com", "password": "a long password"}
    assert stack.api("POST", "/accounts", credentials)[0] in (201, 409)
    results: list[int | str] = []
    sent = threading.Semaphore(0)

    def sign_in():
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
        try:
            try:
                connection.request("POST", "/tokens", json.dumps(credentials), {"Content-Type": "application/json"})
            finally:
                sent.release()
            results.append(connection.getresponse().status)
        except OSError as exc:
            results.append(repr(exc))
        finally:
            connection.close()

    # Password hashing takes a while, so requests are in flight when SIGTERM comes. It comes
    # once every request is sent and web has answered one: a request sent after it would
    # rightly be refused, and a loaded machine can take longer than any fixed pause to send.
    threads = [threading.Thread(target=sign_in) for _ in range(24)]
    for thread in threads:
        thread.start()
    assert all(sent.acquire(timeout=30) for _ in threads), "the requests were not all sent within 30 s"
    assert poll(lambda: results, 30), "web answered none of them"
    with subprocess.Popen(
        ["make", "down"], cwd=stack.directory, env=stack.env, stdout=subprocess.PIPE, text=True
    ) as down:
        poll(lambda: "stopping the stack" in (down.stdout.readline() or "stopping the stack"), 10)
        in_flight = 24 - len(results)
        for thread in threads:
            thread.join(60)
        assert down.wait(120) == 0
    assert in_flight > 0, "every request had finished before make down: the test proved nothing"
    assert results == [201] * 24, results
