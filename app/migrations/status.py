"""Print every revision, oldest first, applied or pending, like Rails' db:migrate:status.

python -m app.migrations status      (make status runs it in a one-off container)
"""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.migrations.history import (
    PROJECT_ROOT,
    is_known,
    revision_message,
    schema_state,
    script_directory,
    unknown_revision_message,
)
from app.migrations.safety import migration_engine


def applied_revisions(current: str | None) -> set[str]:
    """Return the revisions at or below ``current`` in the history (none when it is not in the history)."""
    if current is None or not is_known(current):
        return set()
    return {rev.revision for rev in script_directory().iterate_revisions(current, "base")}


def current_revision(settings: Settings) -> str | None:
    """Return the revision DATABASE_URL's database is at."""
    with migration_engine(settings).connect() as conn:
        return schema_state(conn).revision


def report(current: str | None) -> list[str]:
    """Return the status table and summary for a database at ``current``."""
    scripts = script_directory()
    known = is_known(current)
    applied = applied_revisions(current)
    revisions = list(reversed(list(scripts.walk_revisions())))
    lines = [f"{'Status':<8} {'Revision':<14} {'Message':<40} File"]
    for rev in revisions:
        state = ("applied" if rev.revision in applied else "pending") if known else "unknown"
        message = revision_message(rev)
        path = Path(rev.path)
        shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
        lines.append(f"{state:<8} {rev.revision:<14} {message[:40]:<40} {shown}")
    head = scripts.get_current_head()
    lines.append("")
    if not known:
        lines.append(f"Current revision: {current} (not in this code)")
        lines.append(unknown_revision_message(current, head))
        return lines
    pending = len(revisions) - len(applied)
    lines.append(f"Current revision: {current or '(none: empty database)'}{' (head)' if current == head else ''}")
    lines.append(f"Pending: {pending}" + ("" if pending else " (up to date)"))
    return lines


def run(settings: Settings) -> int:
    """Print the status table; return the exit status."""
    print("\n".join(report(current_revision(settings))))
    return 0
