"""Passwords, API tokens, and the bearer-token check that guards the API."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import current_app, g, request
from sqlalchemy import bindparam, select
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import get_session
from app.models import AccountToken

P = ParamSpec("P")
R = TypeVar("R")

# Built once: the statement every authenticated request runs.
_tokens = AccountToken.__table__
ACCOUNT_FOR_TOKEN = select(_tokens.c.account_id).where(_tokens.c.token_hash == bindparam("token_hash"))


def hash_method() -> str:
    """Return werkzeug's hash method for new passwords (scrypt unless configured otherwise)."""
    return current_app.extensions["settings"].password_hash_method


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


def unauthorized(message: str) -> Unauthorized:
    """Return a 401 that tells the client to send a bearer token."""
    return Unauthorized(description=message, www_authenticate=WWWAuthenticate("Bearer", {"realm": "api"}))


def bearer_account_id() -> int:
    """Return the account id for this request's bearer token, or raise 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise unauthorized("Authorization header is missing; send 'Authorization: Bearer <token>'.")
    if scheme.lower() != "bearer" or not token or "\x00" in token:
        raise unauthorized("Authorization header must be 'Bearer <token>'.")
    account_id = get_session().scalar(ACCOUNT_FOR_TOKEN, {"token_hash": token_hash(token)})
    if account_id is None:
        raise unauthorized("The token is not valid.")
    return account_id


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Run ``view`` only for a valid bearer token, with ``g.account_id`` set.

    The view is marked ``requires_token``, so the OpenAPI document lists the
    bearer scheme (and its 401) for exactly these views.
    """

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        g.account_id = bearer_account_id()
        return view(*args, **kwargs)

    wrapped.requires_token = True  # type: ignore[attr-defined]
    return wrapped
