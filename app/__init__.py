"""The sample app: accounts that save map locations and mark favourites.

The factory imports the web stack (Flask, the views) when it runs, not when
the package is imported: migration tools import ``app.models`` and
``app.config`` through this package, and need none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, with ``config`` overriding settings by name."""
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app import db
    from app.config import load_settings
    from app.errors import register_error_handlers
    from app.validation import AsciiInt

    settings = load_settings(**dict(config or {})).require_secret_key()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key or "dev-only-not-secret",
        TESTING=settings.testing,
        DEBUG=settings.debug,
        MAX_CONTENT_LENGTH=settings.max_content_length,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep fields in the order the API documents
    app.url_map.converters["int"] = AsciiInt  # before any route: one URL per resource
    app.extensions["settings"] = settings
    if settings.proxy_hops:
        # Heroku's router is one hop; trusting more would let clients forge their address.
        # It passes Host through and sets no X-Forwarded-Host, so that header is only
        # ever the client's: trusting it would let a client pick the host of every URL.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.proxy_hops,
            x_proto=settings.proxy_hops,
            x_host=0,
            x_port=settings.proxy_hops,
        )
    db.init_app(app, settings)
    register_error_handlers(app)

    from app import accounts, health, locations, openapi

    app.register_blueprint(health.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(locations.bp)
    app.register_blueprint(openapi.bp)
    return app
