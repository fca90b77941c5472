"""/healthz answers while the process is up; /readyz only when the schema is at head."""

from __future__ import annotations

from app import create_app
from app.schema import head_revision
from tests.support.databases import downgrade, scratch_database, upgrade


def test_healthz_is_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_at_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    head = head_revision()
    assert response.get_json() == {"database": "ok", "revision": head, "head": head, "pending": []}


def _client_for(url):
    return create_app({"database_url": url, "environment": "testing"}).test_client()


def test_readyz_is_503_with_the_older_revision_when_behind(server_url):
    with scratch_database(server_url, "behind") as url:
        upgrade(url, "head")
        downgrade(url, "-1")
        client = _client_for(url)
        body = client.get("/readyz")
        assert body.status_code == 503
        state = body.get_json()
        assert state["database"] == "ok"
        assert state["head"] == head_revision()
        assert state["revision"] not in (None, head_revision())
        assert state["pending"] == [{"revision": head_revision(), "message": "Add favorites table"}]
        upgrade(url, "head")
        assert client.get("/readyz").status_code == 200


def test_readyz_is_503_before_any_migration(server_url):
    with scratch_database(server_url, "empty") as url:
        response = _client_for(url).get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert (body["database"], body["revision"], body["head"]) == ("ok", None, head_revision())
        assert [p["message"] for p in body["pending"]] == [
            "Create account table",
            "Create locations table",
            "Add zoomlevel to locations",
            "Add favorites table",
        ]


def test_readyz_is_503_when_the_database_is_unreachable_and_healthz_still_200():
    client = _client_for("postgresql://nobody:nothing@127.0.0.1:9/none")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"database": "unavailable", "revision": None, "head": head_revision(), "pending": []}
    assert client.get("/healthz").status_code == 200
