"""The suite belongs to the user: after a typical first change, `make check` and the suite pass unchanged.

A copy of the project gets the README's first migration (a nullable column on
locations) and a table of the user's own, each with the revision Alembic
autogenerates, as on two branches that git then merged: a merge revision
joins them. Then the copy's own tests run: those that read the migration
history, the models or the table list, and `make check`. The rest build
their own histories on top of whatever head there is, or never look at
the history; they are left out to keep `make test` fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.docker import copy_project
from devtools.postgres import scratch_database
from tests.support.history import FIRST_MESSAGE, FIRST_SLUG, with_first_column

pytestmark = pytest.mark.copies_the_suite

HISTORY_TESTS = [
    "tests/test_migrations.py", "tests/test_health.py", "tests/test_local.py", "tests/test_accounts.py",
    "tests/test_check.py::test_make_check_passes_on_the_project",
]  # fmt: skip

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


def test_after_a_first_change_make_check_and_the_suite_pass_unchanged(tmp_path, server_url):
    project = copy_project(tmp_path / "project")
    models = project / "app" / "models.py"
    with scratch_database(server_url, "yours") as url:
        run(project, sys.executable, "-m", "alembic", "upgrade", "head", DATABASE_URL=url)
        models.write_text(with_first_column(models.read_text()))
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

    suite = run(
        project, sys.executable, "-m", "pytest", *HISTORY_TESTS, "-m", "not docker",
        "-p", "no:xdist", "-q", "-p", "no:cacheprovider", TEST_DATABASE_URL=server_url,
    )  # fmt: skip
    summary = suite.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
