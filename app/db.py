"""Engine per app, session per request, closed at teardown.

Two habits keep a request to the statements it needs. A pooled connection
is pinged only when it sat idle (a dropped one is replaced before use, with
no ``SELECT 1`` on every checkout under load), and GET/HEAD requests run in
autocommit, so a read costs no ``BEGIN``/``ROLLBACK`` round trips. Anything
else gets a real transaction that the view commits.

They pay: ``bench/bench.py --only throughput`` serves this app beside the same
app with SQLAlchemy's usual habits (``pool_pre_ping``, a transaction per read,
bench/plain_db.py): 1,110 vs 995 req/s for GET /locations, 1.12x, on 2 cores.
"""

from __future__ import annotations

import os
import threading
import time
import weakref

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from app.config import Settings

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Heroku's router answers 503 (H12) when a dyno sends no first byte within
# 30 s of the request, and stamps each request's arrival in X-Request-Start
# (milliseconds), as the local router does (Dev Center: "Request Timeout").
ROUTER_TIMEOUT = 30.0


class RouterGaveUp(Exception):
    """The router answered this request 503 (H12) already: its transaction must not commit."""


def make_engine(settings: Settings) -> Engine:
    """Return an engine for ``settings``; built by the factory, never at import."""
    engine = create_engine(settings.database_url, **settings.engine_options())
    ping_when_idle(engine, settings.db_ping_after)
    release_when_idle(engine, settings.db_pool_idle)
    event.listen(engine, "checkin", end_autocommit)
    return engine


def release_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Close a process's pooled connections once none has been in use for ``idle_seconds`` (0: never).

    Each web thread keeps the connection it used in its worker's pool. On a
    plan that takes 20 connections, a few idle dynos would otherwise hold
    every one, and a release, a psql or a make status could not connect. A
    thread per process looks twice per period; it starts on the process's
    first checkout, because gunicorn forks its workers from a preloaded app
    and threads do not survive a fork. It holds the engine weakly, and ends with it.
    """
    if idle_seconds <= 0:
        return
    last_checkout = [time.monotonic()]
    watched_in: list[int] = []

    def watch(ref: weakref.ref[Engine]) -> None:
        while (watched := ref()) is not None:
            pool = watched.pool
            unused = isinstance(pool, QueuePool) and pool.checkedout() == 0 and pool.checkedin() > 0
            if unused and time.monotonic() - last_checkout[0] >= idle_seconds:
                pool.dispose()  # closes the pooled connections; the pool opens new ones on demand
            del watched, pool
            time.sleep(idle_seconds / 2)

    @event.listens_for(engine, "checkout")
    def note_checkout(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: object) -> None:
        last_checkout[0] = time.monotonic()
        if os.getpid() not in watched_in:
            watched_in.append(os.getpid())
            threading.Thread(target=watch, args=(weakref.ref(engine),), name="db-pool-idle", daemon=True).start()


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use if it was idle for ``idle_seconds``.

    Raising DisconnectionError from ``checkout`` makes the pool discard the
    connection and hand out a fresh one, so a server restart or an idle
    timeout costs no failed request.
    """

    @event.listens_for(engine, "checkin")
    def remember_checkin(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: object) -> None:
        checked_in = record.info.get("checked_in_at")
        if checked_in is None or time.monotonic() - checked_in < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


def end_autocommit(dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
    """Undo a read's autocommit on checkin, so the next user gets a transactional connection."""
    if dbapi_connection is not None and dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


def init_app(app: Flask, settings: Settings) -> None:
    """Attach an engine and a session factory to ``app``."""
    engine = make_engine(settings)
    app.extensions["db.engine"] = engine
    maker = sessionmaker(engine, expire_on_commit=False)
    event.listen(maker, "before_commit", refuse_after_the_router_gave_up)
    app.extensions["db.sessionmaker"] = maker
    app.teardown_appcontext(close_session)


def refuse_after_the_router_gave_up(session: Session) -> None:
    """Refuse to commit once the router has answered the request 503 (H12): its client was told it failed.

    DB_STATEMENT_TIMEOUT ends a slow statement before then, but it runs on
    the server: one that stopped answering (a failover, a paused container)
    fires no timeout, and the request's work would commit whenever it came
    back, long after its client, told it failed, may have sent it again.
    """
    if not has_request_context():
        return
    stamp = request.headers.get("X-Request-Start", "")
    if not (stamp.isascii() and stamp.isdecimal() and len(stamp) <= 15):
        return  # not through a router (make local, a test client), or no time in milliseconds: no one gave up
    waited = time.time() - int(stamp) / 1000
    if waited >= ROUTER_TIMEOUT:
        raise RouterGaveUp(f"the router answered it 503 (H12) {waited - ROUTER_TIMEOUT:.1f} s ago")


def get_engine() -> Engine:
    """Return the current app's engine."""
    engine: Engine = current_app.extensions["db.engine"]
    return engine


def get_session() -> Session:
    """Return the session for this request, opening it on first use."""
    session: Session | None = g.get("db_session")
    if session is None:
        maker: sessionmaker[Session] = current_app.extensions["db.sessionmaker"]
        session = maker()
        if request.method in READ_ONLY_METHODS:
            # Flipping psycopg2's flag sends no SQL (SQLAlchemy's AUTOCOMMIT
            # isolation level costs a SET per checkout); end_autocommit flips it back.
            session.connection().connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        g.db_session = session
    return session


def close_session(exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and return the connection to the pool."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def violates(exc: IntegrityError, model: type[DeclarativeBase], *columns: str) -> bool:
    """Return whether the database refused a write for ``model``'s constraint on exactly ``columns``.

    A view answers "already exists" or "not found" for the one constraint
    that means it; any other refusal (a constraint of the user's own, say)
    stays a server error instead of being reported as that.
    """
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    table = model.__table__
    return isinstance(table, Table) and any(
        isinstance(c, ColumnCollectionConstraint) and c.name == name and set(c.columns.keys()) == set(columns)
        for c in table.constraints
    )
