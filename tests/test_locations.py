"""Locations and favourites: the happy paths and what bad input does to them."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime

import pytest
import sqlalchemy as sa

from app.locations import PAGE_DEFAULT
from app.models import Location
from tests.support.api import assert_error, save_location, sign_up


@pytest.fixture
def me(client):
    return sign_up(client)


def test_create_returns_the_location_with_default_zoom(client, me):
    response = client.post(
        "/locations", json={"name": "  Eiffel Tower ", "latitude": 48.8584, "longitude": 2.2945}, headers=me.headers
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "name", "latitude", "longitude", "zoomlevel", "favorite", "created_at"}
    assert body["name"] == "Eiffel Tower"
    assert (body["latitude"], body["longitude"]) == (48.8584, 2.2945)
    assert body["zoomlevel"] == 12
    assert body["favorite"] is False
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


@pytest.mark.parametrize("zoom", [0, 7, 22])
def test_zoomlevel_bounds_are_accepted(client, me, zoom):
    assert save_location(client, me, zoomlevel=zoom)["zoomlevel"] == zoom


def test_edge_coordinates_are_accepted(client, me):
    body = save_location(client, me, name="x" * 200, latitude=-90, longitude=180)
    assert (body["latitude"], body["longitude"], len(body["name"])) == (-90.0, 180.0, 200)


def test_list_and_get_show_only_saved_locations_oldest_first(client, me):
    first = save_location(client, me, name="First")
    second = save_location(client, me, name="Second", zoomlevel=3)
    listing = client.get("/locations", headers=me.headers)
    assert listing.status_code == 200
    assert listing.get_json() == {"locations": [first, second]}
    assert client.get(f"/locations/{second['id']}", headers=me.headers).get_json() == second


def test_patch_changes_only_the_given_fields(client, me):
    location = save_location(client, me)
    change = {"zoomlevel": 18, "name": "Alfama"}
    response = client.patch(f"/locations/{location['id']}", json=change, headers=me.headers)
    assert response.status_code == 200
    assert response.get_json() == {**location, **change}
    assert client.get(f"/locations/{location['id']}", headers=me.headers).get_json()["zoomlevel"] == 18


def test_empty_patch_changes_nothing(client, me):
    location = save_location(client, me)
    response = client.patch(f"/locations/{location['id']}", json={}, headers=me.headers)
    assert response.status_code == 200
    assert response.get_json() == location


def test_delete_removes_the_location_and_its_favourite(client, me, counts):
    location = save_location(client, me)
    assert client.put(f"/locations/{location['id']}/favorite", headers=me.headers).status_code == 204
    assert client.delete(f"/locations/{location['id']}", headers=me.headers).status_code == 204
    assert_error(client.get(f"/locations/{location['id']}", headers=me.headers), 404)
    assert_error(client.delete(f"/locations/{location['id']}", headers=me.headers), 404)
    assert counts()["favorites"] == 0


def test_favourite_is_idempotent_and_listed(client, me):
    liked = save_location(client, me, name="Liked")
    save_location(client, me, name="Other")
    url = f"/locations/{liked['id']}/favorite"
    for _ in range(2):
        response = client.put(url, headers=me.headers)
        assert response.status_code == 204 and response.get_data() == b""
        assert "Content-Type" not in response.headers, "no body, nothing for a type to describe"
    favorites = client.get("/favorites", headers=me.headers).get_json()["locations"]
    assert [f["name"] for f in favorites] == ["Liked"]
    assert favorites[0]["favorite"] is True
    assert client.get(f"/locations/{liked['id']}", headers=me.headers).get_json()["favorite"] is True
    for _ in range(2):
        assert client.delete(url, headers=me.headers).status_code == 204
    assert client.get("/favorites", headers=me.headers).get_json() == {"locations": []}


def test_a_new_location_is_no_favourite_while_others_are(client, me):
    """Favourites elsewhere, another account's or this one's, say nothing about a new location."""
    theirs = sign_up(client)
    for account in (theirs, me):
        liked = save_location(client, account, name="Liked")
        assert client.put(f"/locations/{liked['id']}/favorite", headers=account.headers).status_code == 204
    created = save_location(client, me, name="New")
    assert created["favorite"] is False
    assert client.get(f"/locations/{created['id']}", headers=me.headers).get_json()["favorite"] is False


def test_favourite_of_a_missing_location_is_404(client, me, counts):
    before = counts()
    assert_error(client.put("/locations/999/favorite", headers=me.headers), 404)
    assert_error(client.delete("/locations/999/favorite", headers=me.headers), 404)
    assert counts() == before


GOOD = {"name": "Porto", "latitude": 41.15, "longitude": -8.61}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "nul\x00byte"}, "name"),
        ({"latitude": 90.0001}, "latitude"),
        ({"latitude": -91}, "latitude"),
        ({"latitude": "41.1"}, "latitude"),
        ({"latitude": True}, "latitude"),
        ({"latitude": 10**400}, "latitude"),
        ({"longitude": 180.5}, "longitude"),
        ({"longitude": None}, "longitude"),
        ({"zoomlevel": 23}, "zoomlevel"),
        ({"zoomlevel": -1}, "zoomlevel"),
        ({"zoomlevel": 3.5}, "zoomlevel"),
        ({"zoomlevel": "12"}, "zoomlevel"),
        ({"zoomlevel": False}, "zoomlevel"),
        ({"zoom_level": 3}, "zoom_level"),
        ({"favorite": True}, "favorite"),
    ],
)
def test_create_validation_names_the_field_and_writes_nothing(client, me, counts, override, field):
    before = counts()
    assert_error(client.post("/locations", json={**GOOD, **override}, headers=me.headers), 422, field=field)
    assert counts() == before


@pytest.mark.parametrize("missing", ["name", "latitude", "longitude"])
def test_create_requires_name_and_coordinates(client, me, counts, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    before = counts()
    assert_error(client.post("/locations", json=body, headers=me.headers), 422, field=missing, contains="required")
    assert counts() == before


def post_written(client, me, field: str, literal: str):
    """POST a good location with ``field`` written as the JSON ``literal`` (NaN, 1e1, thousands of digits)."""
    raw = json.dumps({**GOOD, field: 0}).replace(f'"{field}": 0', f'"{field}": {literal}')
    return client.post("/locations", data=raw, content_type="application/json", headers=me.headers)


def test_integers_are_exact_with_pythons_digit_limit_lifted(client, me):
    """PYTHONINTMAXSTRDIGITS=0 (a config var away) lifts the limit: every integer still parses as written."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        assert save_location(client, me, zoomlevel=12)["zoomlevel"] == 12
        assert_error(post_written(client, me, "zoomlevel", "9" * 5000), 422, field="zoomlevel")
    finally:
        sys.set_int_max_str_digits(limit)


@pytest.mark.parametrize(
    ("literal", "said"),
    [
        (literal, "written as an integer, like 12, without a decimal point or exponent")
        for literal in ("12.5", "12.0", "1e1")
    ]
    + [("NaN", "an integer, not NaN or Infinity"), ("-Infinity", "an integer, not NaN or Infinity")],
)
def test_a_zoomlevel_written_with_a_fraction_or_exponent_is_refused_saying_how_to_write_it(client, me, literal, said):
    response = post_written(client, me, "zoomlevel", literal)
    assert_error(response, 422, field="zoomlevel", contains=f"zoomlevel: must be {said}")


def test_non_finite_numbers_are_refused(client, me, counts):
    before = counts()
    for literal in ("NaN", "Infinity", "-Infinity"):
        assert_error(post_written(client, me, "latitude", literal), 422, field="latitude")
    assert counts() == before


@pytest.mark.parametrize(("field", "said"), [("latitude", "between -90 and 90"), ("zoomlevel", "from 0 to 22")])
def test_an_integer_of_thousands_of_digits_is_out_of_range_not_bad_json(client, me, counts, field, said):
    """Valid JSON past Python's limit on digits: the field's range says no, not Python's advice to raise the limit."""
    before = counts()
    for sign in ("", "-"):
        assert_error(post_written(client, me, field, f"{sign}{'9' * 5000}"), 422, field=field, contains=said)
    assert counts() == before


@pytest.mark.parametrize(
    ("patch", "field"),
    [({"zoomlevel": 99}, "zoomlevel"), ({"name": ""}, "name"), ({"latitude": 200}, "latitude"), ({"id": 5}, "id")],
)
def test_invalid_patch_leaves_the_location_unchanged(client, me, patch, field):
    location = save_location(client, me)
    # A valid change next to the invalid one must not be applied either.
    response = client.patch(f"/locations/{location['id']}", json={"name": "Changed", **patch}, headers=me.headers)
    assert_error(response, 422, field=field)
    assert client.get(f"/locations/{location['id']}", headers=me.headers).get_json() == location


@pytest.mark.parametrize("location_id", ["0", "12345", "9223372036854775807", "9223372036854775808", "1" * 40])
def test_ids_that_cannot_exist_are_404_not_500(client, me, location_id):
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        assert_error(getattr(client, method)(f"/locations/{location_id}", headers=me.headers, **kwargs), 404)
    assert_error(client.put(f"/locations/{location_id}/favorite", headers=me.headers), 404)


def test_non_numeric_id_is_404(client, me):
    assert_error(client.get("/locations/abc", headers=me.headers), 404)


@pytest.mark.parametrize("spelling", ["01", "\u0661", "\uff11", "\U0001d7cf"])
def test_a_location_has_one_url_not_one_per_way_to_write_its_id(client, me, spelling):
    """A leading zero, an Arabic-Indic, fullwidth or mathematical 1: none is location 1."""
    location = save_location(client, me)
    assert location["id"] == 1
    assert_error(client.get(f"/locations/{spelling}", headers=me.headers), 404)
    assert_error(client.get("/locations/-1", headers=me.headers), 404)


def pages(client, me, url: str) -> list[list[dict]]:
    """Follow a listing's ``Link: <...>; rel="next"`` headers from ``url``; return each page's locations."""
    seen = []
    while url:
        response = client.get(url, headers=me.headers)
        assert response.status_code == 200, response.get_json()
        seen.append(response.get_json()["locations"])
        link = response.headers.get("Link")
        url = link and re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)
        assert not url or url.startswith("http://localhost/"), "absolute, as the router's host says"
        assert len(seen) < 50, "the next page never ends"
    return seen


def test_a_listing_comes_a_page_at_a_time_and_the_link_leads_through_all_of_it(client, me):
    saved = [save_location(client, me, name=f"Place {n}") for n in range(5)]
    found = pages(client, me, "/locations?limit=2")
    assert [len(page) for page in found] == [2, 2, 1]
    assert [location for page in found for location in page] == saved, "each once, oldest first"
    assert "Link" not in client.get("/locations?limit=5", headers=me.headers).headers, "a full last page says so too"


def test_a_listing_without_a_page_is_the_first_page(client, me, db):
    """A client that asks for no page gets the first PAGE_DEFAULT, and a Link to the rest."""
    numbers = sa.func.generate_series(1, PAGE_DEFAULT + 1).table_valued("n").render_derived()
    rows = sa.select(sa.literal(me.id), "P" + numbers.c.n.cast(Location.name.type), sa.literal(0.0), sa.literal(0.0))
    with db.begin() as connection:  # faster than a request each
        connection.execute(sa.insert(Location).from_select(["account_id", "name", "latitude", "longitude"], rows))
    first = client.get("/locations", headers=me.headers)
    names = [location["name"] for location in first.get_json()["locations"]]
    assert names == [f"P{n}" for n in range(1, PAGE_DEFAULT + 1)]
    rest = pages(client, me, re.search(r"<([^>]+)>", first.headers["Link"]).group(1))
    assert [[location["name"] for location in page] for page in rest] == [[f"P{PAGE_DEFAULT + 1}"]]


def test_pages_neither_repeat_nor_skip_when_locations_change_between_them(client, me):
    """Where the next page starts is the last id seen, not an offset that a delete or insert would shift."""
    saved = [save_location(client, me, name=f"Place {n}") for n in range(4)]
    first = client.get("/locations?limit=2", headers=me.headers)
    assert first.get_json()["locations"] == saved[:2]
    assert client.delete(f"/locations/{saved[0]['id']}", headers=me.headers).status_code == 204
    newest = save_location(client, me, name="Newest")
    rest = pages(client, me, re.search(r"<([^>]+)>", first.headers["Link"]).group(1))
    assert [location for page in rest for location in page] == [*saved[2:], newest]


def test_favourites_come_a_page_at_a_time_too(client, me):
    liked = []
    for n in range(3):
        location = save_location(client, me, name=f"Liked {n}")
        save_location(client, me, name=f"Other {n}")
        assert client.put(f"/locations/{location['id']}/favorite", headers=me.headers).status_code == 204
        liked.append({**location, "favorite": True})
    found = pages(client, me, "/favorites?limit=2")
    assert [location for page in found for location in page] == liked
    assert [len(page) for page in found] == [2, 1]


@pytest.mark.parametrize(
    ("query", "field", "said"),
    [
        ("limit=0", "limit", "from 1 to 1000"),
        ("limit=1001", "limit", "from 1 to 1000"),
        ("limit=" + "9" * 5000, "limit", "from 1 to 1000"),
        ("limit=abc", "limit", "digits"),
        ("limit=", "limit", "digits"),
        ("limit=-1", "limit", "from 1 to 1000"),
        ("limit=-0", "limit", "digits"),
        ("limit=%2B1", "limit", "digits"),  # +1
        ("limit=01", "limit", "digits"),
        ("limit=2.0", "limit", "digits"),
        ("limit=%EF%BC%92", "limit", "digits"),  # a fullwidth 2
        ("after=x", "after", "digits"),
        ("after=9223372036854775808", "after", "from 0 to 9223372036854775807"),
        ("after=-1", "after", "from 0 to 9223372036854775807"),
        ("limit=2&limit=3", "limit", "once"),
        ("limt=5", "limt", "unknown query parameter; expected one of after, limit"),
        ("limt=5&limt=6&limit=1&limit=2", "limt", "unknown query parameter"),  # the unknown one first
    ],
)
def test_a_bad_page_is_a_422_naming_the_parameter(client, me, query, field, said):
    save_location(client, me)
    for path in ("/locations", "/favorites"):
        assert_error(client.get(f"{path}?{query}", headers=me.headers), 422, field=field, contains=said)


def test_a_query_parameter_without_a_name_is_a_422_naming_no_field(client, me):
    error = assert_error(client.get("/locations?=5", headers=me.headers), 422, contains="no name")
    assert "field" not in error


def test_the_page_is_checked_only_for_a_signed_in_caller(client):
    assert_error(client.get("/locations?limit=0"), 401)
