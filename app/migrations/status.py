"""Print every revision, oldest first, applied or pending, like Rails' db:migrate:status.

python -m app.migrations status      (make status runs it in a one-off container)
"""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.migrations.differences import between_models_and
from app.migrations.history import (
    PROJECT_ROOT,
    SchemaState,
    revision_message,
    schema_state,
    script_directory,
)
from app.migrations.safety import migration_engine


def report(state: SchemaState, local: bool) -> list[str]:
    """Return the status table and summary for a database in ``state`` (``local``: on the local stack)."""
    pending = {p.revision for p in state.pending}
    missed = {p.revision for p in state.rewired.never_ran} if state.rewired else set()
    revisions = list(reversed(list(script_directory().walk_revisions())))
    lines = [f"{'Status':<8} {'Revision':<14} {'Message':<40} File"]
    for rev in revisions:
        status = (
            ("pending" if rev.revision in pending else "missed" if rev.revision in missed else "applied")
            if state.known
            else "unknown"
        )
        message = revision_message(rev)
        path = Path(rev.path)
        shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
        lines.append(f"{status:<8} {rev.revision:<14} {message[:40]:<40} {shown}")
    current, head = state.revision, state.head
    lines.append("")
    if not state.known:
        lines.append(f"Current revision: {current} (not in this code)")
        lines.append(state.summary(local))
        return lines
    lines.append(f"Current revision: {current or '(none: empty database)'}{' (head)' if current == head else ''}")
    if state.rewired:
        lines.append(state.summary(local))
        return lines
    lines.append(f"Pending: {len(pending)}" + ("" if pending else " (up to date)"))
    return lines


def drift(found: list[str]) -> list[str]:
    """Return the lines that list what differs between the models and a database at head."""
    return [
        "The models and the database differ (a change to the models with no revision yet, a revision edited "
        "after it was applied, or a change made by hand); make revision would write:",
        *(f"  {line}" for line in found),
    ]


def run(settings: Settings) -> int:
    """Print the status table; locally, at head, what differs between the models and the database.

    Return 1 when the database is at a revision this code does not contain, or
    never ran revisions this code counts as applied (a rebase re-pointed one):
    migrate and /readyz fail on those too. Else 0: pending revisions are no failure.

    Only locally: comparing server defaults runs their expressions on the
    database, which is not for production's.
    """
    with migration_engine(settings).connect() as conn:
        state = schema_state(conn)
        print("\n".join(report(state, settings.local)), flush=True)
        if not state.known or state.rewired:
            return 1
        if state.current and settings.local:
            try:
                found = between_models_and(conn)
            except Exception as exc:  # what the comparison met is said, as the table above was
                print(f"The models could not be compared with the database: {type(exc).__name__}: {exc}")
                return 0
            if found:
                print("\n".join(drift(found)))
    return 0
