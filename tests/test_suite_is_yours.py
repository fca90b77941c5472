"""The suite belongs to the user: after a typical first change, `make check` and the suite pass unchanged.

A copy of the project gets the README's first migration (a nullable column on
locations) and a table of the user's own, each with the revision Alembic
autogenerates, as on two branches that git then merged: a merge revision
joins them; a worker process type in the Procfile, heroku.yml and Compose; and
a route in one of the app's blueprints. Then the copy's own tests run: those
that read the migration history, the models, the table list, the process
types or the routes, and `make check`. The rest build
their own histories on top of whatever head there is, or never look at
the history; they are left out to keep `make test` fast. The helper that
makes the README's change finds Location by the table it maps, so it
works on models the user has reordered or pared down too.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.migrations.history import PROJECT_ROOT
from devtools.docker import copy_project
from devtools.postgres import scratch_database
from tests.support.formation import add_worker
from tests.support.history import FIRST_COLUMN, FIRST_MESSAGE, FIRST_SLUG, with_first_column

HISTORY_TESTS = [
    "tests/test_migrations.py", "tests/test_health.py", "tests/test_local.py", "tests/test_accounts.py",
    "tests/test_check.py::test_make_check_passes_on_the_project",
]  # fmt: skip
# Those that read the Procfile and heroku.yml, after a process type of the user's own is added.
PROCESS_TESTS = ["tests/test_parity.py", "tests/test_app_json.py", "tests/test_doctor.py"]
# Those that read the app's routes, after a route of the user's own is added.
ROUTE_TESTS = ["tests/test_openapi.py"]

# A route of the user's own, in a blueprint the app registers, declared nowhere else.
ECHO_ROUTE = '''

@bp.route("/walkthrough/echo/<name>", methods=["GET", "DELETE"])
def walkthrough_echo(name: str) -> dict[str, str]:
    """Say the name back."""
    return {"name": name}
'''

# A table of the user's own, with a name no project is likely to have already.
TAG_MODEL = '''

class WalkthroughTag(Base):
    """A label an account puts on its own locations."""

    __tablename__ = "walkthrough_tag"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(Text)
'''


def run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=project, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def autogenerate(project: Path, url: str, message: str) -> None:
    """Write the revision for the models' change with the real Alembic CLI (its hooks format it), then apply it."""
    alembic = [sys.executable, "-m", "alembic"]
    run(project, *alembic, "revision", "--autogenerate", "-m", message, DATABASE_URL=url)
    run(project, *alembic, "upgrade", "head", DATABASE_URL=url)


@pytest.mark.copies_the_suite
def test_after_a_first_change_make_check_and_the_suite_pass_unchanged(tmp_path, server_url):
    project = copy_project(tmp_path / "project")
    models = project / "app" / "models.py"
    noted = with_first_column(models.read_text())  # skipped here if the sample's Location is gone
    with scratch_database(server_url, "yours") as url:
        run(project, sys.executable, "-m", "alembic", "upgrade", "head", DATABASE_URL=url)
        models.write_text(noted)
        autogenerate(project, url, FIRST_MESSAGE)
        models.write_text(models.read_text() + TAG_MODEL)
        autogenerate(project, url, "Add walkthrough_tag table")
    versions = project / "alembic" / "versions"
    new = sorted(p.name for p in versions.glob("*.py") if "_add_" in p.name)
    assert any(name.endswith(f"_{FIRST_SLUG}.py") for name in new)
    assert any(name.endswith("_add_walkthrough_tag_table.py") for name in new)
    # As if each was made on a branch of its own and git merged them: the tag table's revision revises
    # what the note's does, and a merge revision (make merge's) joins the two heads.
    [note] = versions.glob(f"*_{FIRST_SLUG}.py")
    [tag] = versions.glob("*_add_walkthrough_tag_table.py")
    note_id = re.search(r"^revision: str = ['\"](\w+)['\"]", note.read_text(), re.M).group(1)
    parent = re.search(r"^down_revision[^=]*= ['\"](\w+)['\"]", note.read_text(), re.M).group(1)
    tag.write_text(tag.read_text().replace(note_id, parent))
    run(project, sys.executable, "-m", "alembic", "merge", "-m", "Merge the note and tag branches", "heads")
    # alembic.ini's post_write_hooks formatted them all: make check's ruff passes with no step of ours.
    add_worker(project)  # a process type of the user's own, in the three places the README names
    health = project / "app" / "health.py"
    health.write_text(health.read_text() + ECHO_ROUTE)

    suite = run(
        project, sys.executable, "-m", "pytest", *HISTORY_TESTS, *PROCESS_TESTS, *ROUTE_TESTS, "-m", "not docker",
        "-p", "no:xdist", "-q", "-p", "no:cacheprovider", TEST_DATABASE_URL=server_url,
    )  # fmt: skip
    summary = suite.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


# Models as a user may have left them, for where the README's column lands.
HEADER = """from datetime import datetime

from sqlalchemy import DateTime, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass
"""
ID = "id: Mapped[int] = mapped_column(primary_key=True)"
CREATED_AT = "created_at: Mapped[datetime] = mapped_column(DateTime)"
LABEL = ["", "def label(self) -> str:", "    return str(self.id)"]


def mapped(name: str, table: str, *body: str) -> str:
    """Return the source of a mapped class, as ruff formats it after the class before."""
    lines = "".join(f"    {line}\n" if line else "\n" for line in (f'__tablename__ = "{table}"', "", *body))
    return f"\n\nclass {name}(Base):\n{lines}"


NOTE_LANDS_IN = {
    "no-created-at-and-a-class-after": (
        HEADER + mapped("Location", "locations", ID) + mapped("Favorite", "favorites", ID, CREATED_AT),
        "Location",
    ),
    "last-after-a-class-with-created-at": (
        HEADER + mapped("Account", "account", ID, CREATED_AT) + mapped("Location", "locations", ID),
        "Location",
    ),
    "first-with-a-method-after-its-columns": (
        HEADER + mapped("Location", "locations", ID, CREATED_AT, *LABEL) + mapped("Account", "account", ID, CREATED_AT),
        "Location",
    ),
    "another-class-name": (
        HEADER + mapped("Account", "account", ID, CREATED_AT) + mapped("Place", "locations", ID, *LABEL),
        "Place",
    ),
}


@pytest.mark.parametrize("case", sorted(NOTE_LANDS_IN))
def test_the_readme_column_lands_in_the_class_that_maps_locations_formatted(case):
    """Whatever the user reordered or removed around it: not in the next class, and no ValueError."""
    models, owner = NOTE_LANDS_IN[case]
    noted = with_first_column(models)
    holders = [
        node.name
        for node in ast.walk(ast.parse(noted))
        if isinstance(node, ast.ClassDef)
        for statement in node.body
        if isinstance(statement, ast.AnnAssign) and ast.unparse(statement.target) == FIRST_COLUMN
    ]
    assert holders == [owner]
    assert noted.replace(f"    {FIRST_COLUMN}: Mapped[str | None] = mapped_column(Text)\n", "", 1) == models
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--stdin-filename", "app/models.py"],
        input=noted, cwd=PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_models_that_map_no_locations_skip_the_readme_walkthrough():
    with pytest.raises(pytest.skip.Exception, match=r"no class in app/models\.py maps the locations table"):
        with_first_column(HEADER + mapped("Account", "account", ID, CREATED_AT))
