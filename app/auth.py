"""Passwords, API tokens, and the bearer-token check that guards the API."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

from flask import current_app, g, request
from flask_httpauth import HTTPTokenAuth
from sqlalchemy import bindparam, select
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized
from werkzeug.security import check_password_hash, generate_password_hash

from app.config import Settings
from app.db import get_session
from app.models import AccountToken

P = ParamSpec("P")
R = TypeVar("R")

# Built once: the statement every authenticated request runs.
_tokens = AccountToken.__table__
ACCOUNT_FOR_TOKEN = select(_tokens.c.account_id).where(_tokens.c.token_hash == bindparam("token_hash"))


def hash_method() -> str:
    """Return werkzeug's hash method for new passwords (scrypt unless configured otherwise)."""
    settings: Settings = current_app.extensions["settings"]
    return settings.password_hash_method


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
    """Return the account id a token stands for (also as ``g.account_id``), or None.

    Flask-HTTPAuth calls it only with a token; one it refuses (NUL included) is told apart by ``refuse``.
    """
    account_id: int | None = get_session().scalar(ACCOUNT_FOR_TOKEN, {"token_hash": token_hash(token)})
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
    raise unauthorized("The token is not valid.", error="invalid_token")


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Run ``view`` only for a valid bearer token, with ``g.account_id`` set.

    The view is marked ``requires_token``, so the OpenAPI document lists the
    bearer scheme (and its 401) for exactly these views.
    """
    guarded: Callable[P, R] = token_auth.login_required(view)
    guarded.requires_token = True  # type: ignore[attr-defined]
    return guarded
