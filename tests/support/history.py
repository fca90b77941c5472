"""Temporary copies of the migration history with extra revisions, for testing what goes wrong."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from app.schema import PROJECT_ROOT, head_revision


def revision_source(revision: str, down_revision: str, message: str, upgrade: str, downgrade: str = "pass") -> str:
    """Return the text of a revision file whose upgrade() and downgrade() run the given code."""
    body = textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
    down = textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")
    return (
        f'"""{message}\n\nRevision ID: {revision}\nRevises: {down_revision}\n"""\n\n'
        "import sqlalchemy as sa\n\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f'def upgrade() -> None:\n    """{message}."""\n{body}\n\n\n'
        f'def downgrade() -> None:\n    """Undo: {message}."""\n{down}\n'
    )


def history_with(directory: Path, *revisions: tuple[str, str], drop: tuple[str, ...] = ()) -> Path:
    """Copy alembic.ini and alembic/ into ``directory``, add ``(filename, source)`` revisions; return the ini.

    ``drop`` removes revision files whose names contain any of the given strings.
    """
    shutil.copy(PROJECT_ROOT / "alembic.ini", directory / "alembic.ini")
    shutil.copytree(PROJECT_ROOT / "alembic", directory / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    versions = directory / "alembic" / "versions"
    for path in versions.glob("*.py"):
        if any(part in path.name for part in drop):
            path.unlink()
    for filename, source in revisions:
        (versions / filename).write_text(source)
    return directory / "alembic.ini"


SEED_HEAD = head_revision()
