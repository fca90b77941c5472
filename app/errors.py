"""Every error leaves the app as JSON: ``{"error": {"code", "name", "message"}}``.

A database that is down or restarting is a 503 with ``Retry-After``, logged
in one line, not a 500 with a traceback: the first request to meet a dead
connection drops it and every connection pooled before it, and the next
connects afresh.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, NoReturn, cast

from flask import Flask, current_app, g, request
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError, SQLAlchemyError
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    NotFound,
    ServiceUnavailable,
    UnprocessableEntity,
)
from werkzeug.wrappers import Response

from app.db import ROUTER_TIMEOUT, RouterGaveUp, get_engine
from app.migrations.history import HistoryError, schema_state
from app.migrations.safety import QUERY_CANCELED, db_error_reason

# Seconds a client should wait before retrying while the database is unavailable.
RETRY_AFTER = 1
# SQLSTATEs of a table or column the code expects and the database lacks.
MISSING_FROM_SCHEMA = {"42P01", "42703"}


class ValidationError(UnprocessableEntity):
    """A 422 that names the offending field in the body as well as the message (unless no one field is at fault)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(description=f"{field}: {message}" if field is not None else message)
        self.field = field


def unavailable(description: str) -> ServiceUnavailable:
    """Return the app's 503: every one carries ``Retry-After``, as the API description promises."""
    return ServiceUnavailable(description=description, retry_after=RETRY_AFTER)


def invalid(field: str | None, message: str) -> NoReturn:
    """Abort the request with a 422 naming ``field`` (None: the request as a whole)."""
    raise ValidationError(field, message)


def error_response(exc: HTTPException) -> Response:
    """Return the JSON error body for ``exc`` with werkzeug's status and headers (Allow,
    WWW-Authenticate, Retry-After).

    Not ``exc.get_response()``: it writes werkzeug's HTML page first, and a
    message quoting what the client sent (a key with a lone surrogate) would
    fail to encode there, a 500 in place of the 422.
    """
    body: dict[str, Any] = {"code": exc.code, "name": exc.name, "message": exc.description}
    field = getattr(exc, "field", None)
    if field is not None:
        body["field"] = field
    response = cast(Response, current_app.json.response({"error": body}))  # written as every other answer is
    response.status_code = cast(int, exc.code)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers.add(name, value)
    return response


def this_request() -> str:
    """Return "GET /path request_id=..." for a log line: the id the router's and the access log's lines carry."""
    return f"{request.method} {request.path} request_id={request.headers.get('X-Request-Id', '-')}"


def _rollback() -> None:
    session = g.get("db_session")
    if session is not None:
        with suppress(SQLAlchemyError):  # a dead connection cannot roll back; the pool discards it
            session.rollback()


def _schema_mismatch() -> str | None:
    """Return, in words, how the database's schema falls short of this code; None if it does not, or is unknown."""
    try:
        with get_engine().connect() as connection:
            state = schema_state(connection)
    except HistoryError as exc:  # two heads after a git merge, say: the missing table is the other branch's
        return str(exc)
    except SQLAlchemyError:
        return None
    return None if state.current else state.summary(current_app.extensions["settings"].local)


def register_error_handlers(app: Flask) -> None:
    """Turn every HTTP error, and any uncaught exception, into JSON."""

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Response:
        _rollback()
        if isinstance(exc, NotFound) and exc.description == NotFound.description:  # no route, not a view's 404
            exc.description = f"No route matches {request.path}: GET /openapi.json lists the API's."
        return error_response(exc)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def handle_database_unavailable(exc: SQLAlchemyError) -> Response:
        _rollback()
        if getattr(getattr(exc, "orig", None), "pgcode", None) == QUERY_CANCELED:
            return handle_statement_timeout(exc)
        app.logger.warning("database unavailable: %s: %s", this_request(), db_error_reason(exc))
        return error_response(unavailable("The database is unavailable; retry shortly."))

    def handle_statement_timeout(exc: SQLAlchemyError) -> Response:
        """A statement past DB_STATEMENT_TIMEOUT: cancelled and rolled back, before the router's 30 s ran out."""
        timeout = app.extensions["settings"].db_statement_timeout
        app.logger.warning("statement timeout (%s): %s: %s", timeout, this_request(), db_error_reason(exc))
        return error_response(
            unavailable(
                f"The database did not finish this request within {timeout} "
                "(DB_STATEMENT_TIMEOUT); its transaction was rolled back."
            )
        )

    @app.errorhandler(RouterGaveUp)
    def handle_router_gave_up(exc: RouterGaveUp) -> Response:
        """Nothing committed: the client has the router's 503 already, and may send the request again."""
        _rollback()
        app.logger.warning("not committed: %s: %s", this_request(), exc)
        return error_response(
            unavailable(f"This request was not saved: the router gave up on it after {ROUTER_TIMEOUT:.0f} s.")
        )

    @app.errorhandler(ProgrammingError)
    def handle_schema_behind(exc: ProgrammingError) -> Response:
        """A missing table or column, with migrations pending (make downgrade, a new checkout): 503, saying so."""
        _rollback()
        said = _schema_mismatch() if getattr(exc.orig, "pgcode", None) in MISSING_FROM_SCHEMA else None
        if said is None:
            return handle_unexpected(exc)
        app.logger.warning("schema not at this code's head: %s: %s", this_request(), said)
        return error_response(unavailable(f"The database does not match this code: {said}"))

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        _rollback()
        app.logger.exception("unhandled error: %s", this_request())
        return error_response(InternalServerError(description="The server hit an unexpected error."))
