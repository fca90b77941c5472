"""Connection handling: reads run in autocommit, writes in a transaction, dead connections are replaced."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app import create_app
from app.db import violates
from app.models import Account, Favorite
from devtools.http import poll
from tests.conftest import CHEAP_HASH
from tests.support.api import assert_error, sign_up
from tests.support.databases import unpooled


@pytest.fixture
def db(migrated_db):
    """Yield an engine on this test's own database: killing its connections touches no other test."""
    with unpooled(migrated_db) as engine:
        yield engine


def terminate_app_connections(db) -> int:
    """Kill every other connection to the test's database, as a server restart would."""
    with db.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()


@pytest.fixture
def fresh_app(migrated_db):
    """Yield a factory for apps with their own pool on the test's own database."""
    apps = []

    def build(**overrides):
        app = create_app(
            {"database_url": migrated_db, "environment": "testing", "password_hash_method": CHEAP_HASH, **overrides}
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["db.engine"].dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_use(fresh_app, db):
    app = fresh_app(db_ping_after=0)
    client = app.test_client()
    me = sign_up(client)
    assert client.get("/locations", headers=me.headers).status_code == 200
    assert terminate_app_connections(db) >= 1
    assert client.get("/locations", headers=me.headers).status_code == 200


def test_without_the_idle_ping_a_dropped_connection_is_a_503_and_the_next_request_reconnects(fresh_app, db, caplog):
    # The control for the test above: it is the ping that saves the request.
    app = fresh_app(db_ping_after=3600)
    client = app.test_client()
    me = sign_up(client)
    assert client.get("/locations", headers=me.headers).status_code == 200
    terminate_app_connections(db)
    response = client.get("/locations", headers=me.headers)
    assert_error(response, 503, contains="database is unavailable")
    assert response.headers["Retry-After"] == "1"
    [line] = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert "GET /locations" in line.getMessage() and line.exc_info is None, "one line, no traceback"
    assert client.get("/locations", headers=me.headers).status_code == 200, "the pool recovers on the next request"


def test_an_unreachable_database_is_a_503_with_retry_after_for_reads_and_writes(fresh_app):
    app = fresh_app(database_url="postgresql://nobody:nothing@127.0.0.1:9/none", db_connect_timeout=1)
    client = app.test_client()
    for response in (
        client.get("/locations", headers={"Authorization": "Bearer x"}),
        client.post("/accounts", json={"email": "a@example.com", "password": "long enough"}),
    ):
        assert_error(response, 503, contains="retry shortly")
        assert response.headers["Retry-After"] == "1"


def test_reads_use_autocommit_and_writes_get_a_transaction_on_the_same_connection(fresh_app):
    app = fresh_app(db_pool_size=1)  # one pooled connection: the write reuses the read's
    seen = []

    @app.route("/_autocommit", methods=["GET", "POST"])
    def autocommit_state():
        from flask import request

        from app.db import get_session

        connection = get_session().connection().connection.dbapi_connection
        seen.append((request.method, connection.autocommit, id(connection)))
        return {}

    client = app.test_client()
    client.get("/_autocommit")
    client.post("/_autocommit")
    client.get("/_autocommit")
    assert [(method, autocommit) for method, autocommit, _ in seen] == [("GET", True), ("POST", False), ("GET", True)]
    assert len({conn for _, _, conn in seen}) == 1


def test_a_refused_write_is_matched_to_the_models_constraint_by_name(db):
    """The names the views check for are the names the migrations gave the constraints."""
    with db.begin() as conn:
        conn.execute(text("INSERT INTO account (email, password_hash) VALUES ('a@example.com', 'x')"))
    refused = {}
    for case, sql in {
        "email": "INSERT INTO account (email, password_hash) VALUES ('a@example.com', 'y')",
        "location": "INSERT INTO favorites (account_id, location_id) SELECT id, 999 FROM account",
    }.items():
        with pytest.raises(IntegrityError) as caught, db.begin() as conn:
            conn.execute(text(sql))
        refused[case] = caught.value
    assert violates(refused["email"], Account, "email")
    assert violates(refused["location"], Favorite, "location_id")
    assert not violates(refused["location"], Favorite, "account_id")
    assert not violates(refused["email"], Favorite, "location_id")


def test_a_request_stuck_past_the_statement_timeout_is_a_503_and_commits_nothing(fresh_app, db, caplog):
    """Heroku's router gives up at 30 s (H12); the request's statements give up first, so nothing lands after it."""
    app = fresh_app(db_statement_timeout="300ms")
    client = app.test_client()
    me = sign_up(client)
    created = client.post("/locations", json={"name": "Before", "latitude": 1, "longitude": 2}, headers=me.headers)
    location = created.get_json()["id"]
    with db.connect() as blocker:
        blocker.execute(text("SELECT 1 FROM locations WHERE id = :id FOR UPDATE"), {"id": location})
        response = client.patch(f"/locations/{location}", json={"name": "After"}, headers=me.headers)
        blocker.rollback()
    assert_error(response, 503, contains="did not finish this request within 300ms")
    [line] = [r for r in caplog.records if "statement timeout" in r.getMessage()]
    assert f"PATCH /locations/{location}" in line.getMessage() and line.exc_info is None, "one line, no traceback"
    assert client.get(f"/locations/{location}", headers=me.headers).get_json()["name"] == "Before"


def app_sessions(db) -> int:
    """Count the connections to the test's database other than this one: the app's pooled ones."""
    with db.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalar_one()


def test_a_pool_idle_for_db_pool_idle_seconds_gives_its_connections_back_and_serves_on(fresh_app, db):
    """Idle dynos must not hold every connection a Heroku plan takes: a release or psql could not connect."""
    client = fresh_app(db_pool_idle=1).test_client()
    me = sign_up(client)
    for _ in range(2):  # and again: the pool serves on after it gave its connections back
        assert client.get("/locations", headers=me.headers).status_code == 200
        assert app_sessions(db) >= 1, "kept while in use"
        assert poll(lambda: app_sessions(db) == 0, 10), "given back once idle"


def test_with_db_pool_idle_0_the_pool_keeps_its_connections(fresh_app, db):
    client = fresh_app(db_pool_idle=0).test_client()
    assert client.get("/locations", headers=sign_up(client).headers).status_code == 200
    time.sleep(1.5)
    assert app_sessions(db) >= 1
