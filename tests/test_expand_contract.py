"""The README's expand/contract example is real: it passes make check's lint and runs up and down."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import inspect, text

from app.migrations.history import PROJECT_ROOT
from devtools.postgres import scratch_database
from tests.support.databases import alembic_cli, unpooled
from tests.support.history import SEED, history_with

EXAMPLES = sorted((PROJECT_ROOT / "docs" / "expand-contract").glob("*.py"))
LOCATIONS_TABLE = SEED[1][0]  # the example starts from the seed's "Create locations table"


@pytest.fixture
def example_history(tmp_path):
    """Return alembic.ini of the seed up to its locations table, followed by the example instead of the rest."""
    revisions = [(f"2099_{path.name}", path.read_text()) for path in EXAMPLES]
    return history_with(tmp_path, *revisions, upto=LOCATIONS_TABLE)


def test_the_example_passes_the_zero_downtime_lint(example_history):
    result = subprocess.run(
        [sys.executable, "-m", "app.migrations", "check", "--config", str(example_history),
         "--skip-alembic-check"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(EXAMPLES) == 4


def test_the_example_moves_existing_rows_to_zoom_12_and_requires_it(example_history, server_url):
    with scratch_database(server_url, "expand") as url:
        assert alembic_cli(url, "upgrade", LOCATIONS_TABLE, ini=example_history).returncode == 0
        with unpooled(url) as engine:
            with engine.begin() as conn:
                account = conn.execute(
                    text("INSERT INTO account (email, password_hash) VALUES ('x@example.com', 'x') RETURNING id")
                ).scalar_one()
                for name in ("Old", "Older"):
                    conn.execute(
                        text("INSERT INTO locations (account_id, name, latitude, longitude) VALUES (:a, :n, 1, 2)"),
                        {"a": account, "n": name},
                    )
            for step in ("5afe00000001", "5afe00000002", "5afe00000003", "5afe00000004"):
                result = alembic_cli(url, "upgrade", step, ini=example_history)
                assert result.returncode == 0, result.stderr
                if step == "5afe00000001":
                    # Between expand and backfill, code that writes NULL on purpose: the backfill must fix it.
                    with engine.begin() as conn:
                        conn.execute(
                            text(
                                "INSERT INTO locations (account_id, name, latitude, longitude, zoomlevel)"
                                " VALUES (:a, 'Null', 1, 2, NULL)"
                            ),
                            {"a": account},
                        )
            with engine.connect() as conn:
                zooms = conn.execute(text("SELECT array_agg(zoomlevel ORDER BY id) FROM locations")).scalar_one()
                assert zooms == [12, 12, 12]
                rows = conn.execute(
                    text("SELECT conname, convalidated FROM pg_constraint WHERE conname LIKE '%zoomlevel%'")
                ).all()
                checks = {name: validated for name, validated in rows}
            column = next(c for c in inspect(engine).get_columns("locations") if c["name"] == "zoomlevel")
            assert column["nullable"] is False
            assert checks == {"ck_locations_zoomlevel_range": True}

            down = alembic_cli(url, "downgrade", LOCATIONS_TABLE, ini=example_history)
            assert down.returncode == 0, down.stderr
            assert "zoomlevel" not in [c["name"] for c in inspect(engine).get_columns("locations")]
            assert alembic_cli(url, "upgrade", "head", ini=example_history).returncode == 0, "and up again"
