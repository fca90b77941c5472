"""Passwords, API tokens, and the bearer-token check that guards the API."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn, ParamSpec, TypeVar

from flask import current_app, g, request
from flask_httpauth import HTTPTokenAuth
from sqlalchemy import BindParameter, ColumnElement, Integer, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized
from werkzeug.security import check_password_hash, generate_password_hash

from app.config import Settings
from app.db import get_session
from app.models import AccountToken

P = ParamSpec("P")
R = TypeVar("R")


def expires_at(ttl_days: int | BindParameter[int]) -> ColumnElement[datetime]:
    """Return when a token stops working: TOKEN_TTL_DAYS after it was issued, by the database's clock."""
    return AccountToken.created_at + func.make_interval(0, 0, 0, ttl_days)


# Built once: the statement every authenticated request runs. An expired token is
# found too, so that its refusal can say "expired" rather than "not valid".
ACCOUNT_FOR_TOKEN = select(
    AccountToken.account_id, (expires_at(bindparam("ttl_days", type_=Integer)) > func.now()).label("live")
).where(AccountToken.token_hash == bindparam("token_hash"))


def settings() -> Settings:
    """Return the app's settings, read once by the factory."""
    configured: Settings = current_app.extensions["settings"]
    return configured


def hash_method() -> str:
    """Return werkzeug's hash method for new passwords (scrypt unless configured otherwise)."""
    return settings().password_hash_method


@functools.lru_cache(maxsize=4)
def dummy_hash(method: str) -> str:
    """Return a valid hash to check against when the email is unknown, so that a
    wrong email and a wrong password take the same time and cannot be told apart."""
    return generate_password_hash("not a real password", method=method)


def hash_password(password: str) -> str:
    """Return a salted, slow hash of ``password`` for storage."""
    return generate_password_hash(password, method=hash_method())


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches; constant work even with no account."""
    if stored_hash is None:
        check_password_hash(dummy_hash(hash_method()), password)
        return False
    return check_password_hash(stored_hash, password)


def new_token() -> tuple[str, str]:
    """Return a fresh token and the hash to store for it."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def issue_token(session: Session, account_id: int) -> dict[str, str]:
    """Store a new token for the account and return it with its expiry, as the API shows them.

    The account's expired tokens go in the same transaction: they can never
    be used again, and the table then holds at most the tokens issued
    within TOKEN_TTL_DAYS.
    """
    ttl_days = settings().token_ttl_days
    expired = expires_at(ttl_days) <= func.now()
    session.execute(delete(AccountToken).where(AccountToken.account_id == account_id, expired))
    token, digest = new_token()
    stored = insert(AccountToken).values(account_id=account_id, token_hash=digest).returning(expires_at(ttl_days))
    return {"token": token, "expires_at": session.execute(stored).scalar_one().isoformat()}


def revoke_token(session: Session) -> None:
    """Delete the token this request was made with, so that it no longer works anywhere (signing out)."""
    session.execute(delete(AccountToken).where(AccountToken.token_hash == token_hash(token_auth.get_auth().token)))


def token_hash(token: str) -> str:
    """Return the stored form of ``token``.

    A fast hash suffices: the token has 256 random bits, so there is nothing
    to brute-force, and lookups stay one indexed equality per request.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def unauthorized(message: str, error: str | None = None) -> Unauthorized:
    """Return a 401 that tells the client to send a bearer token.

    ``error`` is RFC 6750's code for the challenge: ``invalid_token`` when a
    token came and is not one, so a client knows to sign in again rather
    than to send one it forgot.
    """
    params: dict[str, str | None] = {"realm": "api", **({"error": error} if error else {})}
    return Unauthorized(description=message, www_authenticate=WWWAuthenticate("Bearer", params))


# Flask-HTTPAuth reads the Authorization header and calls back with the token;
# the callbacks below decide who it is and what a refusal says.
token_auth = HTTPTokenAuth(scheme="Bearer")


@token_auth.verify_token  # type: ignore[untyped-decorator]
def account_for_token(token: str) -> int | None:
    """Return the account id a live token stands for (also as ``g.account_id``), or None.

    Flask-HTTPAuth calls it only with a token; one it refuses (NUL included) is told apart by ``refuse``,
    an expired one by ``g.token_expired``.
    """
    params = {"token_hash": token_hash(token), "ttl_days": settings().token_ttl_days}
    found = get_session().execute(ACCOUNT_FOR_TOKEN, params).first()
    g.token_expired = found is not None and not found.live
    account_id: int | None = found.account_id if found is not None and found.live else None
    g.account_id = account_id
    return account_id


@token_auth.error_handler  # type: ignore[untyped-decorator]
def refuse(status: int) -> NoReturn:
    """Answer the JSON 401 every error gets, saying what was wrong with the header."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise unauthorized("Authorization header is missing; send 'Authorization: Bearer <token>'.")
    if scheme.lower() != "bearer" or not token.strip() or "\x00" in token:
        raise unauthorized("Authorization header must be 'Bearer <token>'.")
    if g.get("token_expired"):
        raise unauthorized(
            f"The token has expired ({settings().token_ttl_days} days after it was issued); "
            "sign in again for a new one: POST /tokens.",
            error="invalid_token",
        )
    raise unauthorized("The token is not valid.", error="invalid_token")


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Run ``view`` only for a valid bearer token, with ``g.account_id`` set.

    The view is marked ``requires_token``, so the OpenAPI document lists the
    bearer scheme (and its 401) for exactly these views.
    """
    guarded: Callable[P, R] = token_auth.login_required(view)
    guarded.requires_token = True  # type: ignore[attr-defined]
    return guarded
