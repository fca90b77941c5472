"""Every error is JSON; no input produces a 500 or a partial write."""

from __future__ import annotations

import io
import json
import re
import time

import marshmallow
import pytest

from app import validation
from app.db import ROUTER_TIMEOUT
from app.errors import ValidationError
from tests.conftest import app_on
from tests.support.api import assert_error, operations_that_need_a_token, save_location, sign_up


@pytest.fixture
def me(client):
    return sign_up(client)


@pytest.mark.parametrize(
    ("raw", "contains"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 20000 + b"]" * 20000, "not valid JSON"),
        (b'{"name": "a", "name": "b", "latitude": 1, "longitude": 1}', "the key 'name' appears more than once"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"a string"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
def test_malformed_or_non_object_json_is_400(client, me, counts, raw, contains):
    before = counts()
    response = client.post("/locations", data=raw, content_type="application/json", headers=me.headers)
    assert_error(response, 400, contains=contains)
    assert counts() == before


def test_a_form_post_is_400_saying_json_is_asked_for_and_json_under_any_content_type_is_read(client, counts):
    form = client.post("/accounts", data={"email": "a@example.com", "password": "long enough"})
    message = assert_error(form, 400)["message"]
    assert message.endswith("(it was sent as application/x-www-form-urlencoded; send a JSON object)"), message
    assert counts()["account"] == 0
    # curl -d labels a JSON body as a form: it is read all the same.
    body = '{"email": "a@example.com", "password": "long enough"}'
    assert client.post("/accounts", data=body, content_type="application/x-www-form-urlencoded").status_code == 201


def test_malformed_json_on_sign_up_is_400(client, counts):
    assert_error(client.post("/accounts", data="{", content_type="application/json"), 400)
    assert counts()["account"] == 0


def test_body_over_64_kib_is_413_and_writes_nothing(client, me, counts):
    before = counts()
    payload = json.dumps({"name": "x", "latitude": 1, "longitude": 1, "pad": "x" * (64 * 1024)})
    response = client.post("/locations", data=payload, content_type="application/json", headers=me.headers)
    assert_error(response, 413, contains="The body is larger than 65536 bytes.")
    response = client.post("/accounts", data=payload, content_type="application/json")
    assert_error(response, 413, contains="The body is larger than 65536 bytes.")
    assert counts() == before


def chunked(client, path: str, body: bytes, **headers: str):
    """POST ``body`` with no Content-Length, as gunicorn hands a chunked request to the app."""
    return client.post(
        path, input_stream=io.BytesIO(body), content_type="application/json",
        headers={"Transfer-Encoding": "chunked", **headers}, environ_overrides={"wsgi.input_terminated": True},
    )  # fmt: skip


def test_a_chunked_body_over_64_kib_is_413_too_not_cut_and_parsed(client, me, counts):
    before = counts()
    padded = json.dumps({"name": "x", "latitude": 1, "longitude": 1, "pad": "x" * (64 * 1024)}).encode()
    assert_error(chunked(client, "/locations", padded, **me.headers), 413)
    assert counts() == before
    small = json.dumps({"name": "Chunked", "latitude": 1, "longitude": 2}).encode()
    assert chunked(client, "/locations", small, **me.headers).status_code == 201, "within the limit it is read whole"


def test_unknown_route_is_json_404_that_says_where_the_routes_are(client):
    error = assert_error(client.get("/no/such/thing"), 404)
    assert error["message"] == "No route matches /no/such/thing: GET /openapi.json lists the API's."


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/accounts")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


MISSING = "Authorization header is missing; send 'Authorization: Bearer <token>'."
MALFORMED = "Authorization header must be 'Bearer <token>'."


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, MISSING), ("", MISSING), ("Bearer", MALFORMED), ("Bearer ", MALFORMED),
        ("Basic dXNlcjpwYXNz", MALFORMED), ("Bearer not-a-real-token", "The token is not valid."),
        ("Token abc", MALFORMED), ("Bearer a\x00b", MALFORMED),
    ],
)  # fmt: skip
def test_missing_or_bad_token_is_401_everywhere_and_says_what_is_wrong(client, header, message):
    headers = {} if header is None else {"Authorization": header}
    for method, url in operations_that_need_a_token(client):
        response = client.open(url, method=method, headers=headers)
        assert_error(response, 401)
        assert response.get_json()["error"]["message"] == message
        challenge = response.headers["WWW-Authenticate"]
        assert re.match(r'Bearer realm="?api"?', challenge), challenge
        # RFC 6750: a token that came and is not one says so; none (or a malformed header) has no error code.
        invalid = re.search(r'error="?invalid_token"?', challenge) is not None
        assert invalid == (message == "The token is not valid."), challenge


def test_auth_is_checked_before_the_body(client):
    response = client.post("/locations", data="{broken", content_type="application/json")
    assert_error(response, 401)


ODD_BODIES = [
    b"{}",
    b'{"name": {"nested": true}, "latitude": [], "longitude": {}}',
    b'{"name": "\\u0000", "latitude": 1, "longitude": 1}',
    b'{"name": "\\ud800", "latitude": 1, "longitude": 1}',
    b'{"name": "x", "latitude": 1e309, "longitude": 1}',
    b'{"name": "x", "latitude": -0.0, "longitude": 1, "zoomlevel": 99999999999999999999999}',
    b'{"name": "x", "latitude": 1, "longitude": 1, "zoomlevel": 1e2}',
    b'{"email": "a@b.co", "password": "\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000"}',
    b'{"email": "' + "é".encode() * 300 + b'@b.co", "password": "longenough"}',
    b'{"email": ["a@b.co"], "password": "longenough"}',
    b'{"a": 1, "a": 2}',
    b'{"\\ud800": 1}',
]


@pytest.mark.parametrize("raw", ODD_BODIES)
def test_odd_input_never_causes_a_500(client, me, raw):
    location = save_location(client, me)
    for method, url, auth in [
        ("post", "/accounts", False),
        ("post", "/tokens", False),
        ("post", "/locations", True),
        ("patch", f"/locations/{location['id']}", True),
    ]:
        headers = me.headers if auth else {}
        response = getattr(client, method)(url, data=raw, content_type="application/json", headers=headers)
        assert response.status_code < 500, (url, raw, response.get_data(as_text=True))
        assert response.mimetype == "application/json"


class Renamed(validation.Body):
    """A body whose field kept its public name when the column behind it was renamed."""

    name = validation.Text(max_len=10, required=True)
    zoom_level = validation.Integer(low=0, high=22, data_key="zoomlevel")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "a", "zoom_level": 3}, "zoom_level", "unknown field; expected one of name, zoomlevel"),
        ({"name": "a", "zoomlevel": 99}, "zoomlevel", "must be an integer from 0 to 22"),
        ({"zoomlevel": 3}, "name", "is required"),
    ],
)
def test_a_field_with_a_data_key_is_named_by_it_in_every_error(app, body, field, message):
    """Clients send, and errors name, the key the API documents, not the attribute behind it."""
    with app.test_request_context(method="POST", json=body), pytest.raises(ValidationError) as refused:
        validation.load(Renamed(), validation.json_object())
    assert (refused.value.field, refused.value.description) == (field, f"{field}: {message}")
    with app.test_request_context(method="POST", json={"name": "a", "zoomlevel": 3}):
        assert validation.load(Renamed(), validation.json_object()) == {"name": "a", "zoom_level": 3}


class Between(validation.Body):
    """A body with a check of the whole of it, as marshmallow's @validates_schema writes one."""

    low = validation.Integer(low=0, high=9, required=True)
    high = validation.Integer(low=0, high=9, required=True)

    @marshmallow.validates_schema
    def ordered(self, data, **kwargs):
        if data["low"] > data["high"]:
            raise marshmallow.ValidationError("low must not be above high")


def test_a_check_of_the_whole_body_is_a_422_naming_no_field(app):
    with app.test_request_context(method="POST", json={"low": 5, "high": 1}), pytest.raises(ValidationError) as refused:
        validation.load(Between(), validation.json_object())
    assert (refused.value.field, refused.value.description) == (None, "low must not be above high")


def test_a_query_schema_refuses_fields_that_read_only_json_numbers():
    """A query string holds text: v.Integer would refuse every value sent, so the schema is refused at import."""

    class Counted(validation.Query):
        count = validation.Integer(low=1, high=5)

    with pytest.raises(TypeError, match=r"Counted\.count: Integer reads JSON numbers.*use QueryInteger"):
        Counted()


@pytest.mark.parametrize("decorate", [lambda: validation.query(validation.Query()), lambda: validation.body(Renamed())])
def test_a_view_without_the_parameter_its_decorator_passes_is_refused_at_import(decorate):
    def listing():
        return {}

    with pytest.raises(TypeError, match=r"listing must take a parameter (query|body)"):
        decorate()(listing)


def test_a_request_the_router_gave_up_on_commits_nothing(client, me, counts, caplog):
    """A database that stops answering fires no statement timeout: back after the router's 30 s, the request's
    work must not commit, for its client got the router's 503 and may send it again."""
    place = {"name": "Twice?", "latitude": 1, "longitude": 2}
    before = counts()
    arrived = int((time.time() - ROUTER_TIMEOUT - 1) * 1000)
    late = client.post("/locations", json=place, headers={**me.headers, "X-Request-Start": str(arrived)})
    assert_error(late, 503, contains="was not saved: the router gave up on it after 30 s")
    assert counts() == before
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("not committed: POST /locations")]
    forged = {**me.headers, "X-Request-Start": "9" * 400}  # no router stamps that: it is ignored, never a 500
    assert client.post("/locations", json=place, headers=forged).status_code == 201
    on_time = client.post(
        "/locations", json=place, headers={**me.headers, "X-Request-Start": str(int(time.time() * 1000))}
    )
    assert on_time.status_code == 201


def test_an_unexpected_error_is_logged_with_its_request_and_the_id_the_router_gave_it(migrated_db, caplog):
    with app_on(migrated_db) as app:
        app.add_url_rule("/suite-boom", "suite_boom", lambda: 1 / 0)
        response = app.test_client().get("/suite-boom", headers={"X-Request-Id": "a" * 20})
    assert_error(response, 500)
    [record] = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
    assert record.getMessage() == f"unhandled error: GET /suite-boom request_id={'a' * 20}"
    assert record.exc_info is not None, "with its traceback"
