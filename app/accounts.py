"""Sign up, sign in and sign out: ``POST /accounts``, ``POST /tokens`` and ``DELETE /tokens``."""

from __future__ import annotations

from flask import Blueprint, abort
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.dml import ReturningInsert

from app import validation as v
from app.auth import hash_password, issue_token, login_required, password_matches, revoke_token, unauthorized
from app.db import get_session
from app.models import EMAIL_MAX, Account
from app.responses import no_content

bp = Blueprint("accounts", __name__)

PASSWORD_MIN, PASSWORD_MAX = 8, 1024
# A response that holds a token is kept by no cache, a browser's included (RFC 6749, section 5.1).
NOT_STORED = {"Cache-Control": "no-store"}


class Credentials(v.Body):
    """Email and password to sign in with.

    Any password length is accepted here so that a short one is a plain 401,
    not a hint about the sign-up rules.
    """

    email = v.Email(max_len=EMAIL_MAX, required=True)
    password = v.Text(min_len=1, max_len=PASSWORD_MAX, strip=False, required=True)


class NewAccount(Credentials):
    """Email and password to sign up with; the password has a minimum length."""

    password = v.Text(min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, strip=False, required=True)


@bp.post("/accounts")
@v.body(NewAccount())
def create_account(body: dict[str, str]) -> ResponseReturnValue:
    """Create an account and return its first token (shown this once only) and when it expires."""
    email, password = body["email"], body["password"]
    session = get_session()
    account_id = session.execute(taken_or_created(email, hash_password(password))).scalar_one_or_none()
    if account_id is None:
        abort(409, description=f"An account with email {email} already exists.")
    token = issue_token(session, account_id)
    session.commit()
    return {"id": account_id, "email": email, **token}, 201, NOT_STORED


def taken_or_created(email: str, password_hash: str) -> ReturningInsert[int]:
    """Return the INSERT of a new account that returns its id, or no row when the email is taken.

    A taken email is not an error in the database: Postgres logs the whole
    statement of an error, and this one holds the password's hash. The
    conflict is the unique index on exactly (email): make it partial or on
    lower(email) and say so here too, or every sign-up fails.
    """
    return (
        insert(Account)
        .values(email=email, password_hash=password_hash)
        .on_conflict_do_nothing(index_elements=[Account.email])
        .returning(Account.id)
    )


@bp.post("/tokens")
@v.body(Credentials())
def create_token(body: dict[str, str]) -> ResponseReturnValue:
    """Exchange email and password for a new token, and say when it expires."""
    email, password = body["email"], body["password"]
    session = get_session()
    account = session.execute(select(Account.id, Account.password_hash).where(Account.email == email)).first()
    # Checked even without an account, so an unknown email takes as long as a wrong password.
    matched = password_matches(account.password_hash if account else None, password)
    if account is None or not matched:
        raise unauthorized("Email or password is wrong.")
    token = issue_token(session, account.id)
    session.commit()
    return token, 201, NOT_STORED


@bp.delete("/tokens")
@login_required
def delete_token() -> ResponseReturnValue:
    """Sign out: the token this request is made with stops working; the account's others keep working."""
    session = get_session()
    revoke_token(session)
    session.commit()
    return no_content()
