"""Reach a running app over HTTP, and wait for a condition: what tests and bench share."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
# A JSON request body or decoded response, as the tests build and read them.
JSON = Any


def poll(predicate: Callable[[], T], timeout: float, interval: float = 0.05) -> T | None:
    """Return the first truthy value of ``predicate()``, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1) -> float:
    """Wait until ``predicate()`` is true; return the seconds it took, or fail after ``timeout``."""
    started = time.monotonic()
    if not poll(predicate, timeout, interval):
        raise AssertionError(f"condition not met within {timeout} s")
    return time.monotonic() - started


def http_status(url: str) -> int | None:
    """Return the HTTP status of GET ``url``, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def http_call(
    url: str, method: str = "GET", body: JSON = None, token: str | None = None
) -> tuple[int, dict[str, str], JSON]:
    """Send a JSON request; return (status, headers with lower-case names, decoded body)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answered, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, answered, raw = exc.code, dict(exc.headers), exc.read()
    answered = {name.lower(): value for name, value in answered.items()}  # names are case-insensitive
    try:
        decoded = json.loads(raw or b"{}")
    except ValueError:  # the router's own error pages are HTML
        decoded = {"body": raw.decode(errors="replace")}
    return status, answered, decoded


def http_raw(port: int | str, method: str = "GET", path: str = "/", headers: Iterable[tuple[str, str]] = (),
             body: bytes | None = None,
             tls: bool = False, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """Send exactly the given headers (repeats allowed) to 127.0.0.1:port; return (status, headers, body)."""
    connection: http.client.HTTPConnection
    if tls:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", int(port), timeout=timeout, context=ssl._create_unverified_context()
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def http_json(
    url: str, method: str = "GET", body: JSON = None, token: str | None = None, expect: int | None = None
) -> tuple[int, JSON]:
    """Send a JSON request; return (status, decoded body), failing if ``expect`` is given and not met."""
    status, _, decoded = http_call(url, method, body, token)
    if expect is not None and status != expect:
        raise AssertionError(f"{method} {url}: expected {expect}, got {status}: {decoded}")
    return status, decoded
