"""Sign-up, sign-in and sign-out: POST /accounts, POST /tokens and DELETE /tokens, and when a token expires."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, ExceptionContext

from app.auth import token_hash
from tests.conftest import app_on
from tests.support.api import assert_error, operations_that_need_a_token, sign_up
from tests.support.databases import unpooled


def test_sign_up_returns_id_email_and_a_working_token(client):
    response = client.post("/accounts", json={"email": "Ada@Example.com", "password": "analytical"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store", "no cache keeps a token"
    body = response.get_json()
    assert set(body) == {"id", "email", "token", "expires_at"}
    assert body["email"] == "ada@example.com"
    assert len(body["token"]) >= 32
    me = client.get("/locations", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200


def test_password_and_token_are_stored_hashed(client, db):
    account = sign_up(client, "hash@example.com", password="plain-text-pw")
    with db.connect() as conn:
        stored_password = conn.execute(text("SELECT password_hash FROM account")).scalar_one()
        stored_token = conn.execute(text("SELECT token_hash FROM account_token")).scalar_one()
    assert "plain-text-pw" not in stored_password
    assert stored_password.startswith(("scrypt:", "pbkdf2:"))
    assert account.token not in stored_token
    assert stored_token == hashlib.sha256(account.token.encode()).hexdigest()


def test_email_is_unique_case_insensitively(client, counts):
    sign_up(client, "dup@example.com")
    before = counts()
    response = client.post("/accounts", json={"email": "DUP@Example.COM", "password": "another-pw"})
    assert_error(response, 409, contains="dup@example.com")
    assert counts() == before


def test_a_taken_email_is_no_error_in_the_database_whose_log_would_show_the_password_hash(client):
    """Postgres logs the statement of every error it raises: a refused INSERT would log the hash."""
    sign_up(client, "once@example.com")
    refused: list[str] = []

    def record(context: ExceptionContext) -> None:
        refused.append(str(context.original_exception))

    event.listen(Engine, "handle_error", record)
    try:
        response = client.post("/accounts", json={"email": "once@example.com", "password": "another-pw"})
    finally:
        event.remove(Engine, "handle_error", record)
    assert_error(response, 409, contains="once@example.com")
    assert refused == []


def test_a_constraint_of_your_own_is_a_500_not_a_taken_email(migrated_db):
    """Only the unique email means 409: a rule the user adds to the table is not reported as a duplicate."""
    with unpooled(migrated_db) as db, db.begin() as conn:
        conn.execute(text("ALTER TABLE account ADD CONSTRAINT no_blocked CHECK (email NOT LIKE '%@blocked.example')"))
    with app_on(migrated_db) as app:
        response = app.test_client().post("/accounts", json={"email": "a@blocked.example", "password": "long enough"})
    error = assert_error(response, 500)
    assert "already exists" not in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "long enough"}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "not-an-email", "password": "long enough"}, "email"),
        ({"email": "a@localhost", "password": "long enough"}, "email"),
        # Look-alikes of ada@example.com that would make a second account for one mailbox.
        ({"email": "ada@example.com.", "password": "long enough"}, "email"),
        ({"email": "ada@@example.com", "password": "long enough"}, "email"),
        ({"email": "ada@example..com", "password": "long enough"}, "email"),
        ({"email": "ada\u200b@example.com", "password": "long enough"}, "email"),
        ({"email": "ada@exam\u200bple.com", "password": "long enough"}, "email"),
        ({"email": "ada@ex\u00adample.com", "password": "long enough"}, "email"),
        ({"email": "ada@e\u200dxample.com", "password": "long enough"}, "email"),
        ({"email": "ada@exa\ufe0fmple.com", "password": "long enough"}, "email"),
        ({"email": "ada@example\u3002com", "password": "long enough"}, "email"),
        ({"email": "ada@example.com\u3002", "password": "long enough"}, "email"),
        ({"email": "ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "password": "long enough"}, "email"),
        ({"email": 42, "password": "long enough"}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": ["list"]}, "password"),
        ({"email": "a@example.com", "password": "x" * 1025}, "password"),
        ({"email": "a\x00@example.com", "password": "long enough"}, "email"),
        ({"email": "a@example.com", "password": "long enough", "admin": True}, "admin"),
    ],
)
def test_sign_up_validation_names_the_field_and_writes_nothing(client, counts, body, field):
    before = counts()
    assert_error(client.post("/accounts", json=body), 422, field=field)
    assert counts() == before


def test_email_length_is_checked_as_stored(client, counts):
    # "İ" lower-cases to two characters: 254 as typed would be 255 as stored, past the column's check.
    email = "İ" + "a" * 248 + "@b.co"
    assert len(email) == 254
    response = client.post("/accounts", json={"email": email, "password": "long enough"})
    assert_error(response, 422, field="email", contains="1 to 254 characters")
    assert counts()["account"] == 0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def a_listing(client) -> tuple[str, str]:
    """(method, URL) of a listing that needs a token and names no id, whichever the API has."""
    return next((m, u) for m, u in operations_that_need_a_token(client) if m == "GET" and "/1" not in u)


def test_sign_in_issues_a_new_independent_token(client):
    account = sign_up(client, "login@example.com", password="s3cret-pass")
    response = client.post("/tokens", json={"email": "LOGIN@example.com", "password": "s3cret-pass"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store", "no cache keeps a token"
    token = response.get_json()["token"]
    assert token != account.token
    method, url = a_listing(client)
    for t in (token, account.token):
        assert client.open(url, method=method, headers=bearer(t)).status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "login@example.com", "password": "wrong-password"},
        {"email": "nobody@example.com", "password": "s3cret-pass"},
        {"email": "login@example.com", "password": "x"},
    ],
)
def test_wrong_credentials_are_401_with_the_same_message(client, counts, credentials):
    sign_up(client, "login@example.com", password="s3cret-pass")
    before = counts()
    error = assert_error(client.post("/tokens", json=credentials), 401)
    assert error["message"] == "Email or password is wrong."
    assert counts() == before


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("José@Bücher.de", "josé@bücher.de"),
        ("ada@bu\u0308cher.de", "ada@bücher.de"),  # typed decomposed, stored as it shows
        ("ada@straße.de", "ada@straße.de"),
        ("ada@例え.jp", "ada@例え.jp"),
    ],
)
def test_an_international_address_signs_up(client, typed, stored):
    response = client.post("/accounts", json={"email": typed, "password": "long enough"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["email"] == stored


# --- A token's life: it expires, and signing out ends it sooner ---


def issued_days_ago(db, token: str, days: float) -> None:
    """Make ``token`` look issued ``days`` ago, by the database's clock."""
    with db.begin() as conn:
        conn.execute(
            text("UPDATE account_token SET created_at = now() - make_interval(secs => :secs) WHERE token_hash = :h"),
            {"secs": days * 86400, "h": token_hash(token)},
        )


def issued_at(db, token: str) -> datetime:
    with db.connect() as conn:
        return conn.execute(
            text("SELECT created_at FROM account_token WHERE token_hash = :h"),
            {"h": token_hash(token)},
        ).scalar_one()


def test_a_new_token_says_when_it_expires_token_ttl_days_after_it_was_issued(client, app, db):
    ttl = timedelta(days=app.extensions["settings"].token_ttl_days)
    signed_up = client.post("/accounts", json={"email": "expiry@example.com", "password": "s3cret-pass"}).get_json()
    signed_in = client.post("/tokens", json={"email": "expiry@example.com", "password": "s3cret-pass"}).get_json()
    for body in (signed_up, signed_in):
        assert body["expires_at"].endswith("+00:00"), "in UTC, with its offset"
        assert datetime.fromisoformat(body["expires_at"]) == issued_at(db, body["token"]) + ttl


def test_an_expired_token_is_refused_with_a_message_that_says_so_and_how_to_get_another(client, app, db):
    days = app.extensions["settings"].token_ttl_days
    account = sign_up(client, "old@example.com")
    method, url = a_listing(client)
    issued_days_ago(db, account.token, days - 0.01)
    assert client.open(url, method=method, headers=bearer(account.token)).status_code == 200
    issued_days_ago(db, account.token, days + 0.01)
    response = client.open(url, method=method, headers=bearer(account.token))
    error = assert_error(response, 401)
    assert error["message"] == (
        f"The token has expired ({days} days after it was issued); sign in again for a new one: POST /tokens."
    )
    assert re.search(r'error="?invalid_token"?', response.headers["WWW-Authenticate"]), "RFC 6750: sign in again"
    fresh = client.post("/tokens", json={"email": account.email, "password": account.password}).get_json()["token"]
    assert client.open(url, method=method, headers=bearer(fresh)).status_code == 200


def test_token_ttl_days_sets_how_long_a_token_works(migrated_db):
    with app_on(migrated_db, token_ttl_days=2) as app, unpooled(migrated_db) as db:
        client = app.test_client()
        account = sign_up(client, "short@example.com")
        method, url = a_listing(client)
        issued_days_ago(db, account.token, 1.9)
        assert client.open(url, method=method, headers=bearer(account.token)).status_code == 200
        issued_days_ago(db, account.token, 2.1)
        assert (
            "expired (2 days"
            in assert_error(client.open(url, method=method, headers=bearer(account.token)), 401)["message"]
        )


def test_signing_in_drops_the_accounts_expired_tokens_and_keeps_its_live_ones(client, app, db):
    days = app.extensions["settings"].token_ttl_days
    account = sign_up(client, "tidy@example.com", password="s3cret-pass")
    other = sign_up(client, "neighbour@example.com")
    live = client.post("/tokens", json={"email": account.email, "password": "s3cret-pass"}).get_json()["token"]
    issued_days_ago(db, account.token, days + 1)
    issued_days_ago(db, other.token, days + 1)
    newest = client.post("/tokens", json={"email": account.email, "password": "s3cret-pass"}).get_json()["token"]
    with db.connect() as conn:
        kept = set(conn.execute(text("SELECT token_hash FROM account_token")).scalars())
    digest = {t: token_hash(t) for t in (account.token, other.token, live, newest)}
    assert kept == {digest[live], digest[newest], digest[other.token]}, "only the signed-in account's expired go"


def test_signing_out_ends_the_token_sent_and_no_other(client, counts):
    account = sign_up(client, "leaving@example.com", password="s3cret-pass")
    other_device = client.post("/tokens", json={"email": account.email, "password": "s3cret-pass"}).get_json()
    method, url = a_listing(client)
    before = counts()
    response = client.delete("/tokens", headers=bearer(account.token))
    assert response.status_code == 204 and response.get_data() == b""
    assert "Content-Type" not in response.headers, "no body, nothing for a type to describe"
    assert counts() == {**before, "account_token": before["account_token"] - 1}
    error = assert_error(client.open(url, method=method, headers=bearer(account.token)), 401)
    assert error["message"] == "The token is not valid."
    assert_error(client.delete("/tokens", headers=bearer(account.token)), 401)
    assert client.open(url, method=method, headers=bearer(other_device["token"])).status_code == 200
