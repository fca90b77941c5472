"""The app image run the way Heroku runs it: arbitrary non-root uid, $PORT, SIGTERM."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from devtools.docker import docker, free_port, network, postgres_on, unique
from devtools.http import http_status, wait_for
from devtools.project import postgres_image
from tests.support.docker import (
    container_exit_code,
    container_logs,
    container_running,
    require_docker,
    shared_app_image,
)
from tests.support.postgres import run_labels

pytestmark = pytest.mark.docker

HEROKU_UID = "54321:54321"  # any uid: the image must not need a particular user


@pytest.fixture(scope="module")
def image(run_dir):
    require_docker()
    return shared_app_image(run_dir)


# Heroku Postgres takes TLS connections only; Debian's Postgres images hold a self-signed pair to serve them.
TLS = ("postgres", "-c", "ssl=on", "-c", "ssl_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem",
       "-c", "ssl_key_file=/etc/ssl/private/ssl-cert-snakeoil.key")  # fmt: skip


@pytest.fixture(scope="module")
def db(image):
    """Yield (network, DATABASE_URL as Heroku spells it) for a fresh Postgres that takes TLS, as Heroku's does."""
    with network() as net, postgres_on(net, postgres_image(), command=TLS, labels=run_labels()) as host:
        yield net, f"postgres://app:secret@{host}:5432/app"


def run_release(image, net, url, *extra):
    return docker(
        "run", "--rm", "--network", net, "--user", HEROKU_UID, "-e", f"DATABASE_URL={url}",
        "-e", "SECRET_KEY=test-secret", *extra, image, "bin/proc", "release", check=False, timeout=120,
    )  # fmt: skip


def start_web(image, net, url, *extra) -> tuple[str, int]:
    """Start the web process with a random $PORT; return (container, host port) once it answers."""
    port, host_port = free_port(), free_port()
    name = unique("tweb")
    docker(
        "run", "-d", "--name", name, "--network", net, "--user", HEROKU_UID,
        "-e", f"DATABASE_URL={url}", "-e", f"PORT={port}", "-e", "SECRET_KEY=test-secret",
        "-e", "WEB_CONCURRENCY=2", "-p", f"127.0.0.1:{host_port}:{port}", *extra, image,
    )  # fmt: skip
    wait_for(lambda: http_status(f"http://127.0.0.1:{host_port}/healthz") == 200, 30, 0.05)
    return name, host_port


def request(port: int, method: str, path: str, body=None, token=None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data) if data else {}


def test_image_runs_as_a_non_root_user(image):
    user = docker("image", "inspect", "-f", "{{.Config.User}}", image).stdout.strip()
    assert user and user not in ("root", "0")
    assert docker("run", "--rm", image, "id", "-u").stdout.strip() != "0"


def test_release_then_web_as_heroku_runs_them(image, db):
    """With DYNO set, as Heroku sets it (and no LOCAL_STACK): every connection must be TLS and carries its dyno."""
    net, url = db
    release = run_release(image, net, url, "-e", "DYNO=release.1")
    assert release.returncode == 0, release.stdout + release.stderr
    assert "release: migrating an empty database" in release.stdout
    assert "Add favorites table" in release.stdout
    again = run_release(image, net, url, "-e", "DYNO=release.2")
    assert again.returncode == 0 and "nothing to migrate" in again.stdout

    name, port = start_web(image, net, url, "-e", "DYNO=web.1")
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 30)
        status, body = request(port, "POST", "/accounts", {"email": "heroku@example.com", "password": "dyno-pass"})
        assert status == 201
        assert request(port, "GET", "/locations", token=body["token"]) == (200, {"locations": []})
        host = url.split("@")[1].split(":")[0]
        sessions = (
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
        )
        held = docker("exec", host, "psql", "-U", "app", "-At", "-c", f"{sessions} WHERE a.application_name = 'web.1'")
        total, encrypted = map(int, held.stdout.strip().split("|"))
        assert total >= 1 and encrypted == total, "web.1's connections, named after it, all over TLS"
        # The access line is written just after the response is sent.
        wait_for(lambda: 'method=GET path="/locations" status=200' in docker("logs", name).stdout, 5)
        logs = container_logs(name)
        assert "reload:" not in logs, "live reload is off when the image runs as Heroku runs it"
    finally:
        docker("rm", "-f", name, check=False)


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(image, db):
    net, url = db
    assert run_release(image, net, url).returncode == 0
    name, port = start_web(image, net, url)
    try:
        credentials = {"email": "drain@example.com", "password": "drain-pass"}
        status, _ = request(port, "POST", "/accounts", credentials)
        assert status in (201, 409)
        results: list[int | str] = []
        lock = threading.Lock()

        sent = threading.Semaphore(0)

        def sign_in():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                try:
                    conn.request("POST", "/tokens", json.dumps(credentials), {"Content-Type": "application/json"})
                finally:
                    sent.release()
                outcome: int | str = conn.getresponse().status
            except Exception as exc:  # a reset connection is exactly the failure we look for
                outcome = repr(exc)
            finally:
                conn.close()
            with lock:
                results.append(outcome)

        # Password hashing makes each request take a while, so they pile up in flight.
        threads = [threading.Thread(target=sign_in) for _ in range(16)]
        for thread in threads:
            thread.start()
        # SIGTERM once every request is on its way: one not sent yet would rightly be refused.
        assert all(sent.acquire(timeout=30) for _ in threads), "the requests were not all sent within 30 s"
        time.sleep(0.3)
        stopped = time.monotonic()
        docker("kill", "--signal", "TERM", name)
        with lock:
            in_flight = 16 - len(results)
        for thread in threads:
            thread.join(60)
        wait_for(lambda: not container_running(name), 30)
        took = time.monotonic() - stopped
        exit_code = container_exit_code(name)
        logs = container_logs(name)
    finally:
        docker("rm", "-f", name, check=False)
    assert in_flight > 0, "no request was in flight when SIGTERM arrived; the test proved nothing"
    assert results == [201] * 16, results
    assert exit_code == 0, logs
    assert took < 20, f"took {took:.1f} s to stop after SIGTERM"
    assert "Handling signal: term" in logs


def test_release_fails_with_one_line_when_the_database_never_answers(image, db):
    net, url = db
    closed_port = url.replace(":5432/", ":5433/")
    result = run_release(image, net, closed_port, "-e", "RELEASE_DB_WAIT=2")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    host = closed_port.split("@")[1].split(":")[0]
    assert last.startswith(f"release: database at {host}:5433/app did not answer within 2 s: "), last


def test_release_stops_waiting_soon_for_a_host_that_does_not_exist(image, db):
    """A Compose db that exited has no name: the release says so in seconds, not after RELEASE_DB_WAIT."""
    net, _ = db
    started = time.monotonic()
    result = run_release(image, net, "postgres://app:secret@no-such-host:5432/app", "-e", "RELEASE_DB_WAIT=60")
    took = time.monotonic() - started
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("release: database host no-such-host is not running, or not the right name: "), last
    assert took < 20, f"gave up after {took:.0f} s, not after RELEASE_DB_WAIT's 60"


def test_web_refuses_to_start_without_secret_key(image, db):
    net, url = db
    result = docker(
        "run", "--rm", "--network", net, "--user", HEROKU_UID, "-e", f"DATABASE_URL={url}",
        image, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stdout + result.stderr
