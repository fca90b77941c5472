"""The OpenAPI document: valid 3.1, complete, and true to the app.

schemathesis reads ``/openapi.json`` from the app in-process (WSGI), signs
up through the API for a token, and sends every operation generated and
mutated requests on a database of this module's own; then it follows the
document's links (create, read, update, delete) as a state machine. Every
answer must be no 5xx and match the document: status code, content type,
headers and body schema; schemathesis's other checks run too (a request
without the token is refused, invalid data is rejected, a deleted location
is gone). Examples are few and derived from a fixed seed, so a run is quick
and repeats exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from flask import Blueprint, Flask
from openapi_spec_validator import validate
from sqlalchemy import text

from app import openapi
from app.models import Account, AccountToken
from app.openapi import openapi_path
from tests.conftest import APP_TABLES, app_on
from tests.support.api import sign_up
from tests.support.databases import migrated_database, unpooled

# Every check schemathesis has but one: positive_data_acceptance expects any request the
# document allows to be accepted, but JSON Schema counts 12.0 as an integer and the app,
# as it always has, refuses it ("must be written as an integer, like 12, without a decimal point or exponent").
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 1,
        "generation": {"mode": "all"},
        # Valid requests along the document's own links: most steps then reach a saved location, not a 404.
        "phases": {"stateful": {"generation": {"mode": "positive"}, "inference": {"algorithms": []}}},
        "checks": {"positive_data_acceptance": {"enabled": False}},
    }
)
# Few examples, derandomized, no example database: quick, and the same run every time, CI included.
SETTINGS = hypothesis.settings(max_examples=25, derandomize=True, database=None, deadline=None)
_accounts = itertools.count(1)
real_build = openapi.build


# --- The document itself ---


@pytest.fixture
def doc(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def undocumented(app: Flask, doc: dict) -> list[str]:
    """Return each method and rule of the app's blueprints that ``doc`` leaves out."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.partition(".")[0] not in app.blueprints:
            continue
        operations = doc["paths"].get(openapi_path(rule.rule), {})
        missing += [
            f"{method} {rule.rule} ({rule.endpoint})"
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
            if method.lower() not in operations
        ]
    return missing


def test_every_route_of_the_api_is_documented(app, doc):
    assert not undocumented(app, doc), "routes missing from /openapi.json"


def test_a_route_not_declared_yet_is_in_the_document_as_its_code_says_so_the_suite_stays_green(database_url):
    """A route of the user's own needs no entry in OPERATIONS to be documented (and fuzzed for 5xx)."""
    with app_on(database_url) as app:
        extra = Blueprint("extra", __name__)

        def show(thing_id: int) -> dict:
            """Show a thing.

            Things are the user's own.
            """
            return {}

        extra.add_url_rule("/extra/<int:thing_id>", "show", show, methods=["GET", "DELETE"])
        extra.add_url_rule("/extra/by-name/<name>", "named", lambda name: {})
        app.register_blueprint(extra)
        doc = app.test_client().get("/openapi.json").get_json()
    assert undocumented(app, doc) == []
    shown = doc["paths"]["/extra/{thing_id}"]
    assert shown["parameters"] == [
        {"in": "path", "name": "thing_id", "required": True, "schema": {"type": "integer", "minimum": 0}}
    ]
    assert set(shown) == {"parameters", "get", "delete"}
    assert (shown["get"]["operationId"], shown["delete"]["operationId"]) == ("extra.show.get", "extra.show.delete")
    assert shown["get"]["summary"] == "Show a thing."
    assert shown["get"]["description"] == "Things are the user's own."
    assert shown["get"]["responses"] == {"default": openapi.UNDECLARED["default"]}
    named = doc["paths"]["/extra/by-name/{name}"]
    assert named["parameters"][0]["schema"] == {"type": "string"}
    assert named["get"]["summary"] == "extra.named", "no docstring: the endpoint's name"
    validate(doc)


def test_document_is_built_once_per_app_on_first_use(database_url, monkeypatch):
    builds = []
    monkeypatch.setattr(openapi, "build", lambda app: builds.append(app) or real_build(app))
    with app_on(database_url) as app:
        assert builds == []
        client = app.test_client()
        first, second = client.get("/openapi.json"), client.get("/openapi.json")
        assert len(builds) == 1
        assert first.get_json() == second.get_json()


def test_request_bodies_are_the_schemas_the_views_validate_with(app, doc):
    rules = app.url_map.iter_rules()
    endpoints = {(openapi_path(rule.rule), method.lower()): rule.endpoint for rule in rules for method in rule.methods}
    bodies = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            view = app.view_functions[endpoints[path, method]]
            declared = getattr(view, "request_schema", None)
            assert (schema is None) == (declared is None), (method, path)
            if declared is not None:
                bodies[f"{method.upper()} {path}"] = schema["$ref"].rpartition("/")[2]
                assert type(declared).__name__ == bodies[f"{method.upper()} {path}"]
    # The sample's among them: the user's own routes may add more.
    assert (
        bodies.items()
        >= {
            "POST /accounts": "NewAccount",
            "POST /tokens": "Credentials",
            "POST /locations": "NewLocation",
            "PATCH /locations/{location_id}": "LocationChanges",
        }.items()
    )
    zoom = doc["components"]["schemas"]["NewLocation"]["properties"]["zoomlevel"]
    assert (zoom["type"], zoom["default"], zoom["minimum"], zoom["maximum"]) == ("integer", 12, 0, 22)
    assert "default" not in doc["components"]["schemas"]["LocationChanges"]["properties"]["zoomlevel"]


def test_a_created_location_links_to_read_update_and_delete(doc):
    links = doc["paths"]["/locations"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    assert {"locations.get_location", "locations.update_location", "locations.delete_location"} <= targets
    assert all(link["parameters"] == {"location_id": "$response.body#/id"} for link in links.values())


# --- Fuzzing the app against it ---


@pytest.fixture(scope="module")
def fuzzed_app(server_url: str) -> Iterator[Flask]:
    """Yield the app on a migrated database of this module's own: fuzzing leaves plenty of rows behind."""
    with migrated_database(server_url, "openapi") as url, app_on(url) as app:
        yield app


@pytest.fixture(scope="module")
def api(fuzzed_app: Flask):
    """Return the app's schema as schemathesis loads it, with a token from a sign-up through the API."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app, config=CONFIG)

    @schema.auth()
    class SignedUp:
        """An account signed up through the API on first use (schemathesis caches its token); sign-out gets its own."""

        def get(self, case, context):
            client = context.app.test_client()
            return sign_up(client, f"fuzz{next(_accounts)}@example.com").token

        def set(self, case, token, context):
            if (case.method.upper(), case.path) == ("DELETE", "/tokens"):
                token = self.get(case, context)  # signing out ends the token sent: not the one the others share
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    return schema


api_schema = schemathesis.pytest.from_fixture("api")
# What an account saves: every table the models declare but the account's own.
SAVED = tuple(table for table in APP_TABLES if table not in {Account.__tablename__, AccountToken.__tablename__})


@api_schema.parametrize()
@hypothesis.settings(SETTINGS)
def test_every_operation_answers_as_documented(case):
    case.call_and_validate()


def test_create_read_update_delete_through_the_links(api, fuzzed_app):
    with unpooled(fuzzed_app.extensions["settings"].database_url) as engine:

        class Scenarios(api.as_state_machine()):
            def setup(self):
                # Each scenario starts with nothing saved but the account (your tables too): a
                # scenario that Hypothesis replays then meets the same answers, as it requires.
                with engine.begin() as connection:
                    connection.execute(text(f"TRUNCATE {', '.join(SAVED)} RESTART IDENTITY CASCADE"))

        Scenarios.run(settings=hypothesis.settings(SETTINGS, stateful_step_count=6))


def test_an_error_says_what_it_means_for_its_operation_and_in_general_for_the_users_own(doc):
    """The shared responses are the API's general words: a user's own route does not read as the sample's."""
    shared = doc["components"]["responses"]
    assert "location" not in shared["NotFound"]["description"].lower()
    assert "email" not in shared["Conflict"]["description"].lower()
    missing = doc["paths"]["/locations/{location_id}"]["get"]["responses"]["404"]
    assert missing["description"].startswith("No such location among the caller's")
    assert missing["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    taken = doc["paths"]["/accounts"]["post"]["responses"]["409"]
    assert taken["description"] == "An account with this email already exists."
