"""One account never reads, changes or favourites another's data."""

from __future__ import annotations

import pytest

from tests.support.api import assert_error, save_location, sign_up


@pytest.fixture
def alice_and_bob(client):
    alice = sign_up(client, "alice@example.com")
    bob = sign_up(client, "bob@example.com")
    return alice, bob


def test_lists_show_only_the_callers_locations(client, alice_and_bob):
    alice, bob = alice_and_bob
    mine = save_location(client, alice, name="Alice's")
    theirs = save_location(client, bob, name="Bob's")
    client.put(f"/locations/{theirs['id']}/favorite", headers=bob.headers)
    assert client.get("/locations", headers=alice.headers).get_json() == {"locations": [mine]}
    assert client.get("/favorites", headers=alice.headers).get_json() == {"locations": []}


def test_another_accounts_location_is_404_for_every_verb(client, alice_and_bob, counts):
    alice, bob = alice_and_bob
    theirs = save_location(client, bob, name="Bob's secret")
    url = f"/locations/{theirs['id']}"
    before = counts()
    missing = assert_error(client.get("/locations/424242", headers=alice.headers), 404)
    for response in (
        client.get(url, headers=alice.headers),
        client.patch(url, json={"name": "pwned"}, headers=alice.headers),
        client.delete(url, headers=alice.headers),
        client.put(f"{url}/favorite", headers=alice.headers),
        client.delete(f"{url}/favorite", headers=alice.headers),
    ):
        error = assert_error(response, 404)
        # Same wording as a missing id, so the response leaks nothing.
        assert error["message"].replace(str(theirs["id"]), "N") == missing["message"].replace("424242", "N")
    assert counts() == before
    assert client.get(url, headers=bob.headers).get_json() == theirs


def test_bobs_favourite_is_not_removed_by_alice(client, alice_and_bob):
    alice, bob = alice_and_bob
    theirs = save_location(client, bob)
    client.put(f"/locations/{theirs['id']}/favorite", headers=bob.headers)
    client.delete(f"/locations/{theirs['id']}/favorite", headers=alice.headers)
    assert [f["id"] for f in client.get("/favorites", headers=bob.headers).get_json()["locations"]] == [theirs["id"]]
