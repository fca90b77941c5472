"""Answers without a body, shaped once for every blueprint."""

from __future__ import annotations

from flask import Response


def no_content() -> Response:
    """204 without a Content-Type: there is no body for it to describe (Flask would say text/html)."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
