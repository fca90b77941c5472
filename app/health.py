"""Liveness and readiness: ``/healthz`` for the process, ``/readyz`` for the database."""

from __future__ import annotations

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from app.db import get_engine
from app.migrations.constants import FULL_WAY_OUT
from app.migrations.history import HistoryError, head_revision, schema_state
from app.migrations.safety import db_error_reason

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Answer 200 while the process can serve requests; touches nothing else."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Answer 200 only when the database answers and is at the migration head.

    Otherwise 503, with ``pending`` listing the revisions the release process
    would apply, oldest first, and ``message`` saying what is wrong and what
    to do, in plain words.
    """
    try:
        with get_engine().connect() as connection:
            state = schema_state(connection)
    except HistoryError as exc:
        current_app.logger.warning("readyz: %s", exc)
        return {"database": "unknown", "revision": None, "head": None, "pending": [], "message": str(exc)}, 503
    except SQLAlchemyError as exc:
        reason = db_error_reason(exc)
        current_app.logger.warning("readyz: database unavailable: %s", reason)
        try:
            head = head_revision()
        except HistoryError:  # said once the database answers
            head = None
        body: dict[str, object] = {"database": "unavailable", "revision": None, "head": head, "pending": []}
        if not current_app.extensions["settings"].local:
            reason = public_reason(reason)
        if reason.startswith(FULL_WAY_OUT):  # it answered, and is full
            return {**body, "message": reason}, 503
        return {**body, "message": f"the database does not answer: {reason}"}, 503
    pending = [{"revision": p.revision, "message": p.message} for p in state.pending]
    body = {"database": "ok", "revision": state.revision, "head": state.head, "pending": pending}
    if state.current:
        return body, 200
    return {**body, "message": state.summary(current_app.extensions["settings"].local)}, 503


def public_reason(reason: str) -> str:
    """Return what readyz says on Heroku of a database error, where anyone can ask it.

    The driver's words name the database's host, address and user; the
    warning logged beside them keeps them for the app's owner.
    """
    return FULL_WAY_OUT if reason.startswith(FULL_WAY_OUT) else "why is in the app's log (heroku logs --tail)"
