"""Helpers for driving the API through Flask's test client."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

_counter = itertools.count(1)


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def sign_up(client: FlaskClient, email: str | None = None, password: str = "correct horse") -> Account:
    """Create an account and return it with its first token."""
    email = email or f"user{next(_counter)}@example.com"
    response = client.post("/accounts", json={"email": email, "password": password})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Account(id=body["id"], email=body["email"], password=password, token=body["token"])


def save_location(client: FlaskClient, account: Account, **fields: Any) -> dict[str, Any]:
    """Save a location for ``account`` and return it as the API shows it."""
    payload = {"name": "Lisbon", "latitude": 38.7223, "longitude": -9.1393, **fields}
    response = client.post("/locations", json=payload, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def assert_error(response, status: int, *, field: str | None = None, contains: str | None = None) -> dict:
    """Assert ``response`` is the JSON error body with ``status``; return the error object."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == status
    assert isinstance(error["name"], str) and error["name"]
    assert isinstance(error["message"], str) and error["message"]
    if status == 503:
        assert response.headers.get("Retry-After") == "1", "the API description promises Retry-After on every 503"
    if field is not None:
        assert error.get("field") == field, error
        assert field in error["message"]
    if contains is not None:
        assert contains.lower() in error["message"].lower(), error
    return error


def operations_that_need_a_token(client: FlaskClient) -> list[tuple[str, str]]:
    """(method, URL) of every operation the OpenAPI document says needs a token, yours included; ids are 1."""
    paths = client.get("/openapi.json").get_json()["paths"]
    needed = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in paths.items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and operation.get("security")  # not the path's own "parameters"
    ]
    if not needed:
        pytest.skip("no operation needs a token")
    return needed
