"""Parse request bodies and check fields, so no input can reach the database unchecked.

Anything Postgres would reject (a NUL byte, a number out of range for its
column) is refused here with a 422 instead of surfacing as a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from flask import abort, request

from app.errors import invalid

MAX_DB_ID = 2**63 - 1


def json_object(allowed: Iterable[str]) -> dict[str, Any]:
    """Return the request body as a JSON object with only ``allowed`` keys.

    Malformed JSON is a 400; an unknown key is a 422, so a typo such as
    ``zoom_level`` is reported instead of silently ignored.
    """
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        abort(400, description="Request body must be a JSON object; it is empty.")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        abort(400, description=f"Request body is not valid JSON: {_short(exc)}")
    if not isinstance(body, dict):
        abort(400, description=f"Request body must be a JSON object, not {_json_type(body)}.")
    allowed_set = set(allowed)
    for key in body:
        if key not in allowed_set:
            invalid(key, f"unknown field; expected one of {', '.join(sorted(allowed_set))}")
    return body


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split("\n", 1)[0][:200]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def required(body: dict[str, Any], field: str) -> Any:
    """Return ``body[field]`` or fail with a 422 saying it is missing."""
    if field not in body:
        invalid(field, "is required")
    return body[field]


def text(field: str, value: Any, *, min_len: int = 1, max_len: int, strip: bool = True) -> str:
    """Return ``value`` as a string of ``min_len``..``max_len`` characters."""
    if not isinstance(value, str):
        invalid(field, f"must be a string, not {_json_type(value)}")
    if "\x00" in value:
        invalid(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON allows lone surrogates such as "\ud800"; UTF-8 does not
        invalid(field, "must be valid Unicode text")
    if strip:
        value = value.strip()
    if not min_len <= len(value) <= max_len:
        invalid(field, f"must be {min_len} to {max_len} characters long")
    return value


def number(field: str, value: Any, *, low: float, high: float) -> float:
    """Return ``value`` as a finite float within ``low``..``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        invalid(field, f"must be a number, not {_json_type(value)}")
    if isinstance(value, int) and not low <= value <= high:
        invalid(field, f"must be between {low:g} and {high:g}")
    result = float(value)
    if not math.isfinite(result):
        invalid(field, "must be a finite number")
    if not low <= result <= high:
        invalid(field, f"must be between {low:g} and {high:g}")
    return result


def integer(field: str, value: Any, *, low: int, high: int) -> int:
    """Return ``value`` as an integer within ``low``..``high`` (a float like 3.5 is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        invalid(field, f"must be an integer, not {_json_type(value)}")
    if not low <= value <= high:
        invalid(field, f"must be an integer from {low} to {high}")
    return value


def email(field: str, value: Any, *, max_len: int) -> str:
    """Return ``value`` as a plausible, lower-cased email address."""
    address = text(field, value, max_len=max_len).lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in address):
        invalid(field, "must be an email address like name@example.com")
    return address
