"""Demo data, as Rails' ``db:seed``: accounts with saved locations and favourites, loaded idempotently.

``make seed`` runs it in a one-off container, ``heroku run python -m app.migrations seed``
on Heroku, and app.json's ``postdeploy`` on every review app. Running it again
adds nothing: accounts are matched by email, locations by account and name,
favourites by their key. It refuses a database that is not at the head, so it
never writes into a schema it was not written for.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert
from werkzeug.security import generate_password_hash

from app.config import Settings
from app.migrations.history import schema_state
from app.migrations.safety import migration_engine
from app.models import Account, Favorite, Location

# Shown by make seed, so people can sign in to a review app with it.
DEMO_PASSWORD = "demo password"

# email -> (name, latitude, longitude, zoomlevel, favourite)
DEMO: dict[str, list[tuple[str, float, float, int, bool]]] = {
    "ada@example.com": [
        ("Science Museum", 51.4978, -0.1745, 16, True),
        ("Bletchley Park", 51.9977, -0.7407, 15, False),
        ("Zürich Hauptbahnhof", 47.3779, 8.5403, 14, False),
    ],
    "grace@example.com": [
        ("Arlington, Virginia", 38.8816, -77.0910, 12, True),
        ("Harvard Mark I", 42.3770, -71.1167, 17, True),
        ("São Paulo", -23.5505, -46.6333, 10, False),
    ],
}


@dataclass
class Seeded:
    """What one run added."""

    accounts: list[str] = field(default_factory=list)  # their emails: only these have the demo password
    locations: int = 0
    favorites: int = 0


def seed(connection: Connection, password_hash_method: str) -> Seeded:
    """Add whatever of ``DEMO`` is missing; return what was added."""
    added = Seeded()
    for email, places in DEMO.items():
        account_id = connection.scalar(select(Account.id).where(Account.email == email))
        if account_id is None:
            password_hash = generate_password_hash(DEMO_PASSWORD, method=password_hash_method)
            account_id = connection.scalar(
                insert(Account).values(email=email, password_hash=password_hash).returning(Account.id)
            )
            added.accounts.append(email)
        mine = select(Location.name, Location.id).where(Location.account_id == account_id)
        saved = dict(connection.execute(mine).tuples().all())
        for name, latitude, longitude, zoomlevel, favorite in places:
            if name not in saved:
                saved[name] = connection.execute(
                    insert(Location)
                    .values(
                        account_id=account_id, name=name, latitude=latitude, longitude=longitude, zoomlevel=zoomlevel
                    )
                    .returning(Location.id)
                ).scalar_one()
                added.locations += 1
            if favorite:
                marked = connection.execute(
                    insert(Favorite).values(account_id=account_id, location_id=saved[name]).on_conflict_do_nothing()
                )
                added.favorites += marked.rowcount
    return added


def run(settings: Settings) -> int:
    """Load the demo data into DATABASE_URL's database; return the exit status."""
    with migration_engine(settings).begin() as connection:
        state = schema_state(connection)
        if not state.current:
            print(f"seed: nothing loaded: {state.summary(settings.local)}", file=sys.stderr)
            return 1
        added = seed(connection, settings.password_hash_method)
    places = sum(len(p) for p in DEMO.values())
    print(f"seed: added {len(added.accounts)} account(s), {added.locations} location(s), {added.favorites} "
          f"favourite(s) ({len(DEMO)} demo accounts with {places} locations in all)")  # fmt: skip
    if added.accounts:
        print(f"seed: sign in as {' or '.join(added.accounts)} with the password {DEMO_PASSWORD!r}")
    return 0
