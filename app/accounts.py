"""Sign up and sign in: ``POST /accounts`` and ``POST /tokens``."""

from __future__ import annotations

from flask import Blueprint, abort
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import validation as v
from app.auth import hash_password, new_token, password_matches, unauthorized
from app.db import get_session
from app.models import EMAIL_MAX, Account, AccountToken

bp = Blueprint("accounts", __name__)

PASSWORD_MIN, PASSWORD_MAX = 8, 1024


def _credentials(password_min: int) -> tuple[str, str]:
    body = v.json_object(("email", "password"))
    email = v.email("email", v.required(body, "email"), max_len=EMAIL_MAX)
    password = v.required(body, "password")
    password = v.text("password", password, min_len=password_min, max_len=PASSWORD_MAX, strip=False)
    return email, password


@bp.post("/accounts")
def create_account():
    """Create an account and return its first token (shown this once only)."""
    email, password = _credentials(PASSWORD_MIN)
    session = get_session()
    account = Account(email=email, password_hash=hash_password(password))
    session.add(account)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        abort(409, description=f"An account with email {email} already exists.")
    token, digest = new_token()
    session.add(AccountToken(account_id=account.id, token_hash=digest))
    session.commit()
    return {"id": account.id, "email": account.email, "token": token}, 201


@bp.post("/tokens")
def create_token():
    """Exchange email and password for a new token.

    Any password length is accepted here so that a short one is a plain 401,
    not a hint about the sign-up rules.
    """
    email, password = _credentials(1)
    session = get_session()
    account = session.execute(select(Account.id, Account.password_hash).where(Account.email == email)).first()
    if not password_matches(account.password_hash if account else None, password):
        raise unauthorized("Email or password is wrong.")
    token, digest = new_token()
    session.add(AccountToken(account_id=account.id, token_hash=digest))
    session.commit()
    return {"token": token}, 201
