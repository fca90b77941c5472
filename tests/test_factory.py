"""The app factory: defaults, overrides and the proxy it trusts."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import ConfigError

URL = "postgres://u:p@127.0.0.1:1/d"


def test_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.delenv("APP_ENV", raising=False)
    app = create_app()
    settings = app.extensions["settings"]
    assert settings.environment == "production"
    assert app.config["SECRET_KEY"] == "from-env"
    assert not app.testing and not app.debug
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024
    assert settings.proxy_hops == 1


def test_production_without_secret_key_fails_fast(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app()


def _whoami_app(**overrides):
    app = create_app({"database_url": URL, "environment": "testing", **overrides})

    @app.get("/_whoami")
    def whoami():
        from flask import request

        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app.test_client()


def test_trusts_exactly_one_proxy_hop():
    client = _whoami_app()
    body = client.get(
        "/_whoami",
        headers={
            "X-Forwarded-For": "6.6.6.6, 203.0.113.7",
            "X-Forwarded-Proto": "https",
            "Host": "app.herokuapp.com",
            # Heroku's router passes Host through and sets no X-Forwarded-Host: this one is the client's.
            "X-Forwarded-Host": "evil.example",
        },
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    ).get_json()
    # The router appends the real client; anything before it is the client's claim.
    assert body == {"addr": "203.0.113.7", "scheme": "https", "host": "app.herokuapp.com"}


def test_proxy_headers_ignored_when_no_proxy_is_trusted():
    client = _whoami_app(proxy_hops=0)
    body = client.get(
        "/_whoami", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    ).get_json()
    assert body["addr"] == "10.1.2.3"
