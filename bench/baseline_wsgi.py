"""The yardstick for the app's speed: GET /locations as a bare WSGI app on psycopg2.

It issues the same two statements the app does (token lookup, then the
listing with its favourite flag) on one autocommit connection per thread,
and builds the same JSON. Run under the same gunicorn settings as the app;
see bench/bench.py.
"""

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg2

from app.config import load_settings

DSN = load_settings().database_url.replace("postgresql+psycopg2://", "postgresql://")
TOKEN_SQL = "SELECT account_token.account_id FROM account_token WHERE account_token.token_hash = %s"
LIST_SQL = (
    "SELECT locations.id, locations.name, locations.latitude, locations.longitude, locations.zoomlevel,"
    " EXISTS (SELECT * FROM favorites WHERE favorites.location_id = locations.id"
    " AND favorites.account_id = locations.account_id) AS favorite, locations.created_at"
    " FROM locations WHERE locations.account_id = %s AND locations.id > 0 ORDER BY locations.id LIMIT 101"
)  # the app's first page: PAGE_DEFAULT (100) rows and one to see whether more follow
_local = threading.local()


# WSGI's start_response and environ, as gunicorn hands them over.
StartResponse = Callable[..., Any]


def connection() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg2.connect(DSN, options="-c timezone=UTC")
        conn.autocommit = True
        _local.conn = conn
    return conn


def respond(start_response: StartResponse, status: str, body: object) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] != "/locations" or environ["REQUEST_METHOD"] != "GET":
        return respond(start_response, "404 Not Found", {"error": {"code": 404}})
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    with connection().cursor() as cur:
        cur.execute(TOKEN_SQL, (hashlib.sha256(token.strip().encode()).hexdigest(),))
        row = cur.fetchone()
        if scheme.lower() != "bearer" or row is None:
            return respond(start_response, "401 Unauthorized", {"error": {"code": 401}})
        cur.execute(LIST_SQL, (row[0],))
        rows = cur.fetchall()
    locations = [
        {"id": r[0], "name": r[1], "latitude": r[2], "longitude": r[3], "zoomlevel": r[4], "favorite": r[5],
         "created_at": r[6].isoformat()}
        for r in rows[:100]
    ]  # fmt: skip
    return respond(start_response, "200 OK", {"locations": locations})
