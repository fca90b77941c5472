"""The seed's migration history, and temporary copies of the history with revisions added or cut.

Tests about the seed story address its revisions by id; tests about "the
latest revision" ask the script directory, so revisions a user adds on top
never break them.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.migrations.history import PROJECT_ROOT, head_revision, script_directory

# The sample app's history, oldest first: (revision, message).
SEED = (
    ("3f1a2c9d0b11", "Create account table"),
    ("8c4e7b2a5d22", "Create locations table"),
    ("b7d9e1f3a633", "Add zoomlevel to locations"),
    ("e2a6c8d4f944", "Add favorites table"),
    ("ade3a66e1114", "Index locations by account and id"),
)


# The README's first migration as the suite replays it in copies of the project: a nullable text
# column on Location. It has a name of its own, so that a project which has made the README's change
# already (a `note`) replays it as well.
FIRST_COLUMN = "walkthrough_note"
FIRST_MESSAGE = f"Add {FIRST_COLUMN} to locations"
FIRST_SLUG = FIRST_MESSAGE.lower().replace(" ", "_")


def locations_class(models: str) -> ast.ClassDef | None:
    """Return the class of ``models`` (app/models.py's source) that maps the locations table, if one does."""
    for node in ast.walk(ast.parse(models)):
        if isinstance(node, ast.ClassDef) and "locations" in map(table_name, node.body):
            return node
    return None


def table_name(statement: ast.stmt) -> object:
    """Return the value ``statement`` gives ``__tablename__``, if it is that assignment."""
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    else:
        return None
    named = any(isinstance(target, ast.Name) and target.id == "__tablename__" for target in targets)
    return value.value if named and isinstance(value, ast.Constant) else None


def with_first_column(models: str) -> str:
    """Return the source of app/models.py with FIRST_COLUMN added to the class that maps locations.

    The line goes after the last assignment in that class's body (its last
    column, else its __tablename__), indented as that is: the class is found
    by what it maps, not by where its text is, so a user's reordered classes or
    removed columns do not move the line into another class. When no class
    maps locations (the sample's models are gone), the README walkthrough
    has nothing to add its column to: the calling test is skipped.
    """
    mapped = locations_class(models)
    if mapped is None:
        pytest.skip(f"no class in app/models.py maps the locations table, which {FIRST_MESSAGE!r} changes")
    last = [statement for statement in mapped.body if isinstance(statement, ast.Assign | ast.AnnAssign)][-1]
    lines = models.split("\n")
    indent = lines[last.lineno - 1][: last.col_offset]
    column = f"{indent}{FIRST_COLUMN}: Mapped[str | None] = mapped_column(Text)"
    return "\n".join([*lines[: last.end_lineno], column, *lines[last.end_lineno :]])


def head() -> str:
    """Return the head of the history as it is now (the seed's, or a later one the user added)."""
    current = head_revision()
    assert current is not None, "the history has no revisions"
    return current


def below(revision: str) -> str:
    """Return the downgrade target that reverts ``revision`` alone.

    The revision before it; for a merge revision its first parent (Alembic
    then keeps the other branch applied: the database is at both heads); or base.
    """
    down = script_directory().get_revision(revision).down_revision
    if isinstance(down, tuple):
        return down[0]
    return down or "base"


def parents(revision: str) -> tuple[str, ...]:
    """Return the revisions ``revision`` comes after: one, two for a merge, none for the first."""
    down = script_directory().get_revision(revision).down_revision
    return down if isinstance(down, tuple) else (down,) if down else ()


def revisions_oldest_first():
    """Return every revision script, oldest first."""
    return list(reversed(list(script_directory().walk_revisions())))


def after(revision: str | None) -> list[tuple[str, str]]:
    """Return (revision, message) of everything after ``revision`` up to head, oldest first."""
    from app.migrations.history import pending_revisions

    return [(p.revision, p.message) for p in pending_revisions(revision)]


def revision_source(
    revision: str, down_revision: str | tuple[str, ...], message: str, upgrade: str, downgrade: str = "pass"
) -> str:
    """Return the text of a revision file whose upgrade() and downgrade() run the given code (a tuple of
    down revisions: a merge)."""
    body = textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
    down = textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")
    return (
        f'"""{message}\n\nRevision ID: {revision}\nRevises: {down_revision}\n"""\n\n'
        "import sqlalchemy as sa\n\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f'def upgrade() -> None:\n    """{message}."""\n{body}\n\n\n'
        f'def downgrade() -> None:\n    """Undo: {message}."""\n{down}\n'
    )


def history_with(directory: Path, *revisions: tuple[str, str], upto: str | None = None) -> Path:
    """Copy alembic.ini and alembic/ into ``directory``, add ``(filename, source)`` revisions; return the ini.

    ``upto`` keeps only that revision and its ancestors, so the added ones
    can replace what came after it, whatever the user has added since.
    """
    shutil.copy(PROJECT_ROOT / "alembic.ini", directory / "alembic.ini")
    shutil.copytree(PROJECT_ROOT / "alembic", directory / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    versions = directory / "alembic" / "versions"
    if upto is not None:
        keep = {Path(rev.path).name for rev in script_directory().iterate_revisions(upto, "base")}
        for path in versions.glob("*.py"):
            if path.name not in keep:
                path.unlink()
    for filename, source in revisions:
        (versions / filename).write_text(source)
    return directory / "alembic.ini"


def check_history(ini: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run make check's migration checks on the history behind ``ini`` (a copy made by history_with)."""
    return subprocess.run(
        [sys.executable, "-m", "app.migrations", "check", "--config", str(ini), *args],
        cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
