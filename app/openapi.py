"""The API's OpenAPI 3.1 document, served at ``GET /openapi.json``.

It is generated, not written by hand, so that it cannot drift from the code:
paths, methods and path parameters come from Flask's url map, each request
body from the marshmallow schema its view validates with (``app.validation.body``),
the bearer scheme and its 401 from ``login_required``. What a view answers
on success, and the errors only it can give, are declared below in
``OPERATIONS``, one entry per endpoint; schemathesis (``tests/test_openapi.py``)
checks every answer against them. A route of yours not declared there yet is
in the document all the same, with what its code says (path, parameters,
body, token) and any answer allowed, so adding one never breaks the suite;
fuzzing still fails it on a 5xx.

The document is built once per app, on its first request, and kept in
``app.extensions``; apispec is imported only then, so starting a dyno pays
nothing for it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import default_exceptions

bp = Blueprint("openapi", __name__)

API_TITLE = "Saved map locations"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Accounts save map locations (with the zoom level to show them at) and mark favourites. "
    "Sign up (`POST /accounts`) or sign in (`POST /tokens`) for a token, then send "
    "`Authorization: Bearer <token>`. A token works until `DELETE /tokens` signs it out or it expires "
    "(`expires_at`). Every error is the JSON `Error` body."
)
BEARER = "bearer"


# --- What the views answer (their bodies are built in the views; these describe them) ---


class Location(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    latitude = fields.Float(required=True)
    longitude = fields.Float(required=True)
    zoomlevel = fields.Integer(required=True)
    favorite = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class Locations(Schema):
    locations = fields.List(fields.Nested(Location), required=True)


_EXPIRES = "When the token stops working (TOKEN_TTL_DAYS after it was issued); then sign in again."


class AccountCreated(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    token = fields.String(required=True, metadata={"description": "Shown this once only."})
    expires_at = fields.DateTime(required=True, metadata={"description": _EXPIRES})


class TokenCreated(Schema):
    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True, metadata={"description": _EXPIRES})


class Health(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class PendingRevision(Schema):
    revision = fields.String(required=True)
    message = fields.String(required=True)


class Readiness(Schema):
    database = fields.String(
        required=True,
        validate=validate.OneOf(["ok", "unavailable", "unknown"]),
        metadata={"description": "unknown: alembic/versions cannot be read as it is (see message)."},
    )
    revision = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Comma-separated when the database is at several heads."},
    )
    head = fields.String(required=True, allow_none=True)
    pending = fields.List(fields.Nested(PendingRevision), required=True)
    message = fields.String(metadata={"description": "What is wrong and what to do; only when not ready."})


class ErrorDetail(Schema):
    code = fields.Integer(required=True)
    name = fields.String(required=True)
    message = fields.String(required=True)
    field = fields.String(metadata={"description": "The field a 422 is about."})


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


# --- Each endpoint's answers ---

# What each error status means in this API; every one has the Error body. An
# operation can say what one means for it (Operation.described).
ERRORS = {
    400: "The body is not JSON, is empty, or is not a JSON object.",
    401: "The credentials are missing, wrong or expired: the bearer token, or the email and password of POST /tokens.",
    404: "Nothing at this path among the caller's (another account's is a 404 too).",
    409: "It conflicts with what exists already.",
    413: "The body is larger than the app accepts (MAX_CONTENT_LENGTH).",
    422: "A body field or query parameter is missing, unknown or invalid; `field` names the first one.",
    503: "The database is unavailable, did not finish within DB_STATEMENT_TIMEOUT, or does not match this "
    "code (migrations pending); retry after `Retry-After` seconds.",
}
ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": "The scheme to authenticate with: Bearer; "
        "error=invalid_token when the token sent is unknown, signed out or expired."
    },
    503: {"Retry-After": "Seconds to wait before retrying."},
}
# A view with a request body can answer these, one with query parameters this, and one that needs a token this.
BODY_ERRORS = (400, 413, 422)
QUERY_ERRORS = (422,)
TOKEN_ERRORS = (401,)

# Links let a client (and schemathesis's stateful run) follow a saved location by its id.
_ID_FROM_BODY = {"location_id": "$response.body#/id"}
_ID_FROM_PATH = {"location_id": "$request.path.location_id"}
_READ_UPDATE_DELETE = {
    "GetLocation": "locations.get_location",
    "UpdateLocation": "locations.update_location",
    "DeleteLocation": "locations.delete_location",
}
_FAVORITE = {"AddFavorite": "locations.add_favorite", "RemoveFavorite": "locations.remove_favorite"}


def _links(targets: Mapping[str, str], parameters: Mapping[str, str]) -> dict[str, Any]:
    return {name: {"operationId": endpoint, "parameters": dict(parameters)} for name, endpoint in targets.items()}


@dataclass(frozen=True)
class Operation:
    """What one endpoint answers when it works, and the errors only it can give.

    Errors that follow from its decorators (a body, a token) are added when
    the document is built; ``others`` are answers without the Error body.
    """

    status: int
    description: str
    schema: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    # What an error status means for this operation, where ERRORS' words are too general.
    described: Mapping[int, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Headers only some answers carry (a next page's Link).
    optional_headers: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, Any] = field(default_factory=dict)
    others: Mapping[int, Any] = field(default_factory=dict)


# Readiness is the one endpoint whose 503 is not the Error body: it says what the database lacks.
NOT_READY = {
    "description": "The database does not answer or is not at the head; `message` says what to do.",
    "content": {"application/json": {"schema": Readiness}},
}

# A response holding a token is kept by no cache (RFC 6749, section 5.1).
_NOT_STORED = {"Cache-Control": "no-store: no cache keeps the token."}

# A listing's next page, when there is one (RFC 8288); the last page has no Link.
_NEXT_PAGE = {"Link": '<URL of the next page>; rel="next", only when more follow this page.'}

_NO_SUCH_LOCATION = {404: "No such location among the caller's (another account's is a 404 too)."}


def _on_a_location(status: int, description: str, schema: type[Schema] | None = None, **more: Any) -> Operation:
    """An operation on one of the caller's locations: it may not be there (404), or the database not answer."""
    return Operation(status, description, schema, errors=(404, 503), described=_NO_SUCH_LOCATION, **more)


OPERATIONS: dict[str, Operation] = {
    "health.healthz": Operation(200, "The process is up.", Health),
    "health.readyz": Operation(
        200, "The database answers and is at the migration head.", Readiness, others={503: NOT_READY}
    ),
    "accounts.create_account": Operation(
        201,
        "The account, with its first token.",
        AccountCreated,
        errors=(409, 503),
        described={409: "An account with this email already exists."},
        headers=_NOT_STORED,
    ),
    "accounts.create_token": Operation(201, "A new token.", TokenCreated, errors=(401, 503), headers=_NOT_STORED),
    "accounts.delete_token": Operation(204, "Signed out: the token sent no longer works.", errors=(503,)),
    "locations.list_locations": Operation(
        200, "A page of the caller's locations, oldest first.", Locations, errors=(503,), optional_headers=_NEXT_PAGE
    ),
    "locations.create_location": Operation(
        201,
        "The saved location.",
        Location,
        errors=(503,),
        headers={"Location": "The location's URL."},
        links=_links({**_READ_UPDATE_DELETE, **_FAVORITE}, _ID_FROM_BODY),
    ),
    "locations.get_location": _on_a_location(
        200, "The location.", Location, links=_links(_READ_UPDATE_DELETE, _ID_FROM_BODY)
    ),
    "locations.update_location": _on_a_location(
        200, "The location as changed.", Location, links=_links(_READ_UPDATE_DELETE, _ID_FROM_BODY)
    ),
    "locations.delete_location": _on_a_location(204, "Deleted, with its favourite mark."),
    "locations.add_favorite": _on_a_location(
        204, "Marked as a favourite.", links=_links(_READ_UPDATE_DELETE, _ID_FROM_PATH)
    ),
    "locations.remove_favorite": _on_a_location(
        204, "Not a favourite (any more).", links=_links(_READ_UPDATE_DELETE, _ID_FROM_PATH)
    ),
    "locations.list_favorites": Operation(
        200,
        "A page of the caller's favourite locations, oldest first.",
        Locations,
        errors=(503,),
        optional_headers=_NEXT_PAGE,
    ),
    "openapi.openapi_json": Operation(200, "This document."),
}


# What an endpoint missing from OPERATIONS answers, as far as the document says.
UNDECLARED = {"default": {"description": "Not declared in app.openapi.OPERATIONS yet, so any answer is allowed."}}


@bp.get("/openapi.json")
def openapi_json() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API."""
    return document(current_app)


def document(app: Flask) -> dict[str, Any]:
    """Return ``app``'s OpenAPI document, built on first use."""
    built: dict[str, Any] | None = app.extensions.get("openapi")
    if built is None:
        built = app.extensions.setdefault("openapi", build(app))
    return built


def build(app: Flask) -> dict[str, Any]:
    """Build the document from ``app``'s url map, its views and ``OPERATIONS``."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec(
        title=API_TITLE,
        version=API_VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": API_DESCRIPTION},
    )
    spec.components.security_scheme(BEARER, {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=Error)
    for status, description in ERRORS.items():
        spec.components.response(_error_name(status), _error_response(description, ERROR_HEADERS.get(status, {})))
    paths: dict[str, dict[str, Any]] = {}
    parameters: dict[str, list[dict[str, Any]]] = {}
    used: set[str] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue  # files, not the API
        view, path = app.view_functions[rule.endpoint], openapi_path(rule.rule)
        parameters.setdefault(path, _path_parameters(rule.rule))
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            operation = _operation(rule.endpoint, view, OPERATIONS.get(rule.endpoint))
            # The endpoint's name, as links name it; with the method after it when a view of yours takes several.
            name = rule.endpoint if len(methods) == 1 else f"{rule.endpoint}.{method.lower()}"
            operation["operationId"] = _unique(name, used)
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations, parameters=parameters[path])
    return spec.to_dict()


def _unique(name: str, used: set[str]) -> str:
    """Return ``name``, or with a number after it when another operation has it (an endpoint on two paths)."""
    chosen = next(c for c in itertools.chain([name], (f"{name}.{n}" for n in itertools.count(2))) if c not in used)
    used.add(chosen)
    return chosen


def openapi_path(rule: str) -> str:
    """Return Flask's ``/locations/<int:location_id>`` as OpenAPI's ``/locations/{location_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


# What each of Flask's converters matches; any other (path, string, a converter of yours) is a string.
CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 0},  # digits only
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
}


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    """Return the parameters of Flask's ``rule``, each with the schema of what its converter matches."""
    return [
        {"in": "path", "name": name, "required": True, "schema": CONVERTER_SCHEMAS.get(converter, {"type": "string"})}
        for converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule)
    ]


def _operation(endpoint: str, view: Any, operation: Operation | None) -> dict[str, Any]:
    summary, _, description = (view.__doc__ or "").strip().partition("\n")
    request_schema = getattr(view, "request_schema", None)
    query_schema = getattr(view, "query_schema", None)
    requires_token = getattr(view, "requires_token", False)
    declared = operation.errors if operation else ()
    errors = {
        *declared,
        *(BODY_ERRORS if request_schema else ()),
        *(QUERY_ERRORS if query_schema else ()),
        *(TOKEN_ERRORS if requires_token else ()),
    }
    responses: dict[str, Any] = {str(operation.status): _success(operation)} if operation else dict(UNDECLARED)
    for status in sorted(errors):
        own = operation.described.get(status) if operation else None
        headers = ERROR_HEADERS.get(status, {})
        responses[str(status)] = _error_response(own, headers) if own else _error_name(status)
    if operation:
        responses.update({str(status): response for status, response in operation.others.items()})
    spec: dict[str, Any] = {
        "operationId": endpoint,
        "summary": summary.strip() or endpoint,
        "tags": [endpoint.partition(".")[0]],
        "responses": responses,
    }
    if description.strip():
        spec["description"] = " ".join(description.split())
    if query_schema is not None:
        spec["parameters"] = [{"in": "query", "schema": query_schema}]  # one parameter per field, by apispec
    if request_schema is not None:
        spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": request_schema}}}
    if requires_token:
        spec["security"] = [{BEARER: []}]
    return spec


def _success(operation: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {"description": operation.description}
    if operation.status != 204:
        schema = operation.schema or {"type": "object"}
        response["content"] = {"application/json": {"schema": schema}}
    if operation.headers or operation.optional_headers:
        response["headers"] = {
            **_headers(operation.headers),
            **_headers(operation.optional_headers, required=False),
        }
    if operation.links:
        response["links"] = dict(operation.links)
    return response


def _error_name(status: int) -> str:
    """Return the component name of an error response: werkzeug's name, ``Not Found`` as ``NotFound``."""
    return default_exceptions[status]().name.replace(" ", "")


def _error_response(description: str, headers: Mapping[str, str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": Error}}}
    if headers:
        response["headers"] = _headers(headers)
    return response


def _headers(headers: Mapping[str, str], *, required: bool = True) -> dict[str, Any]:
    schema = {"type": "string"}
    return {name: {"description": text, "required": required, "schema": schema} for name, text in headers.items()}
