"""/healthz answers while the process is up; /readyz only when the schema is at head."""

from __future__ import annotations

from sqlalchemy import text

from app import create_app
from app.migrations.constants import FULL_WAY_OUT
from devtools.postgres import scratch_database
from tests.support.api import assert_error, sign_up
from tests.support.databases import at_its_connection_limit, unpooled, upgrade, version, without_tls
from tests.support.history import SEED, after, head, parents


def test_healthz_is_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_at_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "revision": head(), "head": head(), "pending": []}


def _client_for(url, **settings):
    return create_app({"database_url": url, "environment": "testing", **settings}).test_client()


def test_readyz_is_503_with_the_older_revision_when_behind(server_url):
    with scratch_database(server_url, "behind") as url:
        for parent in parents(head()):  # up to all but the head, not down from it: a head may be irreversible
            upgrade(url, parent)
        client = _client_for(url)
        body = client.get("/readyz")
        assert body.status_code == 503
        state = body.get_json()
        assert state["database"] == "ok"
        assert state["head"] == head()
        assert state["revision"] == version(url)
        [(_, message)] = after(version(url))
        assert state["pending"] == [{"revision": head(), "message": message}], "the head alone was reverted"
        assert "1 pending" in state["message"] and "make migrate" in state["message"]
        upgrade(url, "head")
        assert client.get("/readyz").status_code == 200


def test_readyz_is_503_before_any_migration(server_url):
    with scratch_database(server_url, "empty") as url:
        response = _client_for(url).get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert (body["database"], body["revision"], body["head"]) == ("ok", None, head())
        pending = [(p["revision"], p["message"]) for p in body["pending"]]
        assert pending == after(None)
        assert pending[: len(SEED)] == list(SEED)


def test_readyz_is_503_when_the_database_is_unreachable_and_healthz_still_200():
    client = _client_for("postgresql://nobody:nothing@127.0.0.1:9/none")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body.pop("message").startswith("the database does not answer: ")
    assert body == {"database": "unavailable", "revision": None, "head": head(), "pending": []}
    assert client.get("/healthz").status_code == 200


def test_on_heroku_readyz_keeps_the_databases_host_and_user_to_the_log(caplog):
    """Anyone can ask a Heroku app's /readyz: what the driver said stays in the app's log."""
    url = "postgresql://nobody:nothing@127.0.0.1:9/none?sslmode=disable"
    response = _client_for(url, dyno="web.1").get("/readyz")
    assert response.status_code == 503
    message = response.get_json()["message"]
    assert message == "the database does not answer: why is in the app's log (heroku logs --tail)"
    [logged] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("readyz: database unavailable")]
    assert "127.0.0.1" in logged and "port 9" in logged, logged


def test_readyz_says_a_database_at_its_connection_limit_is_full_not_silent(server_url):
    """As Heroku's plans do, a role limited to its connections: the next one is refused, and readyz says why."""
    with at_its_connection_limit(server_url) as url:
        response = _client_for(url).get("/readyz")
        heroku = _client_for(without_tls(url), dyno="web.1").get("/readyz")
    assert response.status_code == 503
    message = response.get_json()["message"]
    assert message.startswith("the database takes no more connections (its limit, as the Heroku plan's"), message
    assert "too many connections for role" in message
    assert heroku.status_code == 503
    assert heroku.get_json()["message"] == FULL_WAY_OUT, "the way out, not the role's name"


def test_readyz_explains_a_revision_this_code_does_not_contain(server_url):
    """Locally another branch's revision, with the make commands out; on Heroku a rollback's, with Heroku's."""
    with scratch_database(server_url, "ahead") as url:
        upgrade(url, "head")
        with unpooled(url) as engine, engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'feedfacecafe'"))
        local = _client_for(url).get("/readyz")  # no DYNO: alembic by hand, make revision
        heroku = _client_for(without_tls(url), dyno="web.1").get("/readyz")
    for response in (local, heroku):
        assert response.status_code == 503
        body = response.get_json()
        assert (body["revision"], body["head"], body["pending"]) == ("feedfacecafe", head(), [])
        assert "at revision feedfacecafe, which this code does not contain" in body["message"]
    message = local.get_json()["message"]
    assert "make downgrade to=" in message and "make db-reset" in message
    message = heroku.get_json()["message"]
    assert "a rollback leaves the database as it is" in message and "make " not in message
    assert f"heroku run alembic downgrade {head()}" in message


def test_the_api_on_a_database_behind_the_code_answers_503_saying_what_to_run(server_url, caplog):
    """Not a 500 and a traceback: the same words /readyz has, in the JSON error and one log line."""
    with scratch_database(server_url, "unmigrated") as url:
        response = _client_for(url).post("/accounts", json={"email": "early@example.com", "password": "long enough"})
    message = assert_error(response, 503)["message"]
    assert message.startswith("The database does not match this code: database schema is behind")
    assert "make migrate" in message
    said = [r for r in caplog.records if "schema not at this code's head" in r.getMessage()]
    assert len(said) == 1 and said[0].exc_info is None


def test_a_table_missing_at_head_is_still_an_unexpected_error(server_url):
    """Schema drift with every migration applied is a bug to see, not a migration to run."""
    with scratch_database(server_url, "drifted") as url:
        upgrade(url, "head")
        client = _client_for(url)
        me = sign_up(client)
        with unpooled(url) as engine, engine.begin() as conn:
            conn.execute(text("DROP TABLE locations CASCADE"))
        response = client.get("/locations", headers=me.headers)
    assert response.status_code == 500
