"""Print every revision, oldest first, applied or pending, like Rails' db:migrate:status.

python -m app.status      (make status runs it in a one-off container)
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from app.config import ConfigError, database_url, migration_connect_args
from app.schema import PROJECT_ROOT, script_directory


def applied_revisions(current: str | None) -> set[str]:
    """Return the revisions at or below ``current`` in the history."""
    if current is None:
        return set()
    return {rev.revision for rev in script_directory().iterate_revisions(current, "base")}


def current_revision() -> str | None:
    engine = create_engine(database_url(), poolclass=NullPool, connect_args=migration_connect_args())
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    return heads[0] if heads else None


def report(current: str | None) -> list[str]:
    """Return the status table and summary for a database at ``current``."""
    scripts = script_directory()
    applied = applied_revisions(current)
    revisions = list(reversed(list(scripts.walk_revisions())))
    lines = [f"{'Status':<8} {'Revision':<14} {'Message':<40} File"]
    for rev in revisions:
        state = "applied" if rev.revision in applied else "pending"
        message = (rev.doc or "").splitlines()[0] if rev.doc else ""
        path = Path(rev.path)
        shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
        lines.append(f"{state:<8} {rev.revision:<14} {message[:40]:<40} {shown}")
    pending = len(revisions) - len(applied)
    head = scripts.get_current_head()
    lines.append("")
    lines.append(f"Current revision: {current or '(none: empty database)'}{' (head)' if current == head else ''}")
    lines.append(f"Pending: {pending}" + ("" if pending else " (up to date)"))
    return lines


def main() -> int:
    try:
        current = current_revision()
    except ConfigError as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"status: cannot reach the database: {reason}", file=sys.stderr)
        return 1
    print("\n".join(report(current)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
