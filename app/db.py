"""Engine per app, session per request, closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings


def make_engine(settings: Settings) -> Engine:
    """Return an engine for ``settings``; built by the factory, never at import."""
    return create_engine(settings.database_url, **settings.engine_options())


def init_app(app: Flask, settings: Settings) -> None:
    """Attach an engine and a session factory to ``app``."""
    engine = make_engine(settings)
    app.extensions["db.engine"] = engine
    app.extensions["db.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)


def get_engine() -> Engine:
    """Return the current app's engine."""
    return current_app.extensions["db.engine"]


def get_session() -> Session:
    """Return the session for this request, opening it on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db.sessionmaker"]()
    return g.db_session


def close_session(exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and return the connection to the pool."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
