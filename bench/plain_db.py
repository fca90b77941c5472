"""The app with SQLAlchemy's usual database habits, to show what app/db.py's own habits buy.

Same app, same settings, but the engine pings every connection it checks out
(``pool_pre_ping=True``) and every request, reads included, runs in a
transaction (BEGIN ... ROLLBACK). bench/bench.py serves it beside the app
and prints the two throughputs.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from app import create_app, db


def create() -> Flask:
    app = create_app()
    settings = app.extensions["settings"]
    engine = create_engine(settings.database_url, pool_pre_ping=True, **settings.engine_options())
    app.extensions["db.engine"] = engine
    app.extensions["db.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    db.READ_ONLY_METHODS = frozenset()  # no autocommit reads: every request gets a transaction
    return app
