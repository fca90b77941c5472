"""Demo data: make seed, heroku run and review apps' postdeploy load it; again adds nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from app.migrations.seed import DEMO, DEMO_PASSWORD
from tests.conftest import app_on, row_counts
from tests.support.databases import unpooled, upgrade
from tests.support.history import SEED


def seed(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.migrations", "seed"],
        env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_seed_loads_the_demo_once_and_its_accounts_sign_in(migrated_db):
    first = seed(migrated_db)
    assert first.returncode == 0, first.stderr
    places = sum(len(p) for p in DEMO.values())
    favourites = sum(favourite for p in DEMO.values() for *_, favourite in p)
    assert f"added {len(DEMO)} account(s), {places} location(s), {favourites} favourite(s)" in first.stdout
    with unpooled(migrated_db) as engine:
        counts = row_counts(engine)
        again = seed(migrated_db)
        assert again.returncode == 0 and "added 0 account(s), 0 location(s), 0 favourite(s)" in again.stdout
        assert row_counts(engine) == counts

    with app_on(migrated_db) as app:
        client = app.test_client()
        token = client.post("/tokens", json={"email": next(iter(DEMO)), "password": DEMO_PASSWORD}).get_json()["token"]
        listed = client.get("/locations", headers={"Authorization": f"Bearer {token}"}).get_json()["locations"]
        assert [place["name"] for place in listed] == [name for name, *_ in next(iter(DEMO.values()))]


def test_seed_refuses_a_database_behind_the_code_and_writes_nothing(empty_db):
    upgrade(empty_db, SEED[0][0])
    result = seed(empty_db)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("seed: nothing loaded: database schema is behind")
    with unpooled(empty_db) as engine, engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM account").scalar_one() == 0
