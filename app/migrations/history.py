"""Where the database's schema stands against the migration history."""

from __future__ import annotations

import json
import os
import re
import traceback
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import Revision, RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(ini: Path = ALEMBIC_INI, *, quiet: bool = False) -> Config:
    """Return the project's Alembic config, wherever the process was started from.

    ``quiet`` leaves the caller's logging alone: alembic.ini's logging
    section is for the ``alembic`` command, not for a process that runs
    Alembic in-process (the release, ``make check``, the test suite).
    """
    config = Config(str(ini))
    config.set_main_option("script_location", str(ini.parent / "alembic"))
    if quiet:
        config.attributes["configure_logger"] = False
    return config


class Irreversible(Exception):
    """What a revision's downgrade() raises when its upgrade() cannot be undone (it dropped data, say).

    The revision says why once, in a module constant the test suite reads too::

        IRREVERSIBLE = "the original visibility values are gone"

        def downgrade() -> None:
            '''Irreversible: see IRREVERSIBLE.'''
            raise Irreversible(IRREVERSIBLE)
    """


def irreversible(rev: Script) -> str | None:
    """Return why ``rev`` cannot be reverted (its IRREVERSIBLE), or None when it can."""
    why: str | None = getattr(rev.module, "IRREVERSIBLE", None)
    return why


def irreversible_on_the_way(scripts: ScriptDirectory, destination: str, current: tuple[str, ...]) -> list[Script]:
    """Return the revisions declaring IRREVERSIBLE that a downgrade from ``current`` to ``destination`` would
    revert, newest first: the downgrade refuses before it reverts anything, rather than stop halfway.

    The steps are Alembic's own plan (relative targets, merges), through its
    private ``_downgrade_revs`` as ``make check`` uses ``_upgrade_revs``; a
    target Alembic cannot plan is left to Alembic to explain when it runs.
    """
    try:
        steps = scripts._downgrade_revs(destination, cast(Any, current))  # as Alembic passes them: the heads
    except CommandError:
        return []
    return [step.revision for step in steps if irreversible(step.revision)]


class HistoryError(CommandError):
    """The revisions in alembic/versions cannot be used as they are; the message says how to mend them."""


class BrokenHistory(HistoryError):
    """A revision revises one that alembic/versions does not hold (a file deleted or renamed)."""


class SplitHistory(HistoryError):
    """The history has several heads: git merged branches that each added a revision."""


class UnreadableRevision(HistoryError):
    """A revision file does not compile, or raises as Alembic loads it."""


def revision_line(exc: BaseException) -> str | None:
    """Return where ``exc`` arose in a revision file, as alembic/versions/<file>:<line>, or None.

    A SyntaxError is placed at its own line; anything else at the innermost
    frame of its traceback that is in a revision file.
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        places = [(exc.filename, exc.lineno)]
    else:
        places = [(frame.filename, frame.lineno) for frame in traceback.extract_tb(exc.__traceback__)]
    ours = [(name, line) for name, line in places if _is_revision(Path(name))]
    if not ours:
        return None
    name, line = ours[-1]
    return f"{os.path.relpath(name, Path(name).parents[2])}:{line}"


def _is_revision(path: Path) -> bool:
    """Whether ``path`` is a revision: in a versions/ directory beside an Alembic env.py."""
    return path.parent.name == "versions" and (path.parent.parent / "env.py").is_file()


def unreadable(exc: Exception) -> UnreadableRevision:
    """Say where loading a revision file failed (file:line) and why, in one line."""
    where = revision_line(exc)
    reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return UnreadableRevision(
        f"{f'{where}: ' if where else ''}{type(exc).__name__}: {reason}: Alembic cannot load the revisions until "
        "it is fixed (no migration command, status or /readyz can read the history meanwhile)"
    )


def checked(scripts: ScriptDirectory) -> ScriptDirectory:
    """Return ``scripts`` once its revisions link up; else raise BrokenHistory in one line.

    Alembic itself warns about the missing revision and then fails with a
    KeyError traceback, in every command, `alembic heads` included.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            scripts.revision_map.heads  # noqa: B018 (builds the map)
        except KeyError as exc:
            missing = exc.args[0]
            said = next((str(w.message) for w in caught if "is not present" in str(w.message)), "")
            # "... referenced from a1 -> b2 (head), Its message is not present"; a merge's is "(a1, c3) -> b2".
            found = re.search(r"referenced from .*?-> (\w+)", said)
            revising = found.group(1) if found else None
            files = sorted(Path(scripts.versions).glob(f"*{revising}*.py")) if revising else []
            which = f"revision {revising}" + (f" ({files[0].name})" if files else "") if revising else "a revision"
            raise BrokenHistory(
                f"alembic/versions has no revision {missing}, which {which} revises: put its file back "
                "(git checkout -- alembic/versions) if this branch has it; if the revision that needs it is "
                "another branch's (git status lists its file as untracked), move that file out of "
                "alembic/versions; or point its down_revision at a revision that exists"
            ) from exc
        except Exception as exc:  # a revision file that does not compile, or raises on import
            raise unreadable(exc) from exc
    return scripts


@lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    """Return the migration scripts, checked; read once, they do not change while running."""
    return checked(ScriptDirectory.from_config(alembic_config()))


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """Return the single head of the history; raise SplitHistory, with the way out, when there are several."""
    heads = script_directory().get_heads()
    if len(heads) > 1:
        raise split_history(heads)
    return heads[0] if heads else None


def split_history(heads: tuple[str, ...] | list[str]) -> SplitHistory:
    """Name the heads, and say how to join them (Alembic only says "please use get_heads()")."""
    scripts = script_directory()
    named = ", ".join(f"{head} ({revision_message(scripts.get_revision(head))})" for head in sorted(heads))
    return SplitHistory(
        f"alembic/versions has {len(heads)} heads, {named}, as after a git merge of branches that each added "
        "a revision: make merge joins them in a merge revision; then make migrate"
    )


def revision_message(script: Script) -> str:
    """Return a revision's message: the first line of its docstring."""
    return script.doc.splitlines()[0] if script.doc else ""


def relative_downgrade_at_heads(requested: str, heads: list[str]) -> str:
    """Refuse ``downgrade -N`` of a database at several heads: which of them would go is Alembic's guess.

    ``<revision>@-N`` steps down one side alone.
    """
    scripts = script_directory()
    ways = ", ".join(
        f"make downgrade to={head}@{requested} reverts {revision_message(scripts.get_revision(head))!r}"
        for head in heads
    )
    return (
        f"the database is at {len(heads)} revisions, {', '.join(heads)} (the sides of a merge): downgrade "
        f"{requested} would revert any one of them, so name it: {ways}"
    )


@dataclass(frozen=True)
class Pending:
    """A revision the code has and the database does not."""

    revision: str
    message: str

    def __str__(self) -> str:
        return f"{self.revision} ({self.message})"


@dataclass(frozen=True)
class SchemaState:
    """The database's revision, the code's head, what lies between, and whether they agree.

    A revision this code lacks (``known`` False) may be newer on this code's
    line, or on another line: ``diverged`` says the database's lineage shows
    the latter, ``shared`` the newest revision both lines have (see record_lineage).
    """

    revision: str | None
    head: str | None
    pending: tuple[Pending, ...] = ()
    known: bool = True
    diverged: bool = False
    shared: str | None = None
    # What a rebase left unapplied under a revision this code has (rewired()); None when nothing is.
    rewired: Rewired | None = None

    @property
    def current(self) -> bool:
        return self.revision is not None and self.revision == self.head and self.rewired is None

    def summary(self, local: bool) -> str:
        """Return one line for a log: at head, behind and by which revisions, or ahead of this code
        (with the ways out of the local stack, or of a Heroku app, as ``local`` says)."""
        if self.current:
            return f"database schema is at head ({self.head})"
        if self.rewired:
            return rewired_message(self.rewired, self.revision, local)
        if not self.known:
            return unknown_revision_message(self.revision, self.head, local, self.diverged, self.shared)
        names = ", ".join(str(p) for p in self.pending)
        return (
            f"database schema is behind: at {self.revision or 'base (empty)'}, head is {self.head}; "
            f"{len(self.pending)} pending: {names}. Run the release process (make migrate; on Heroku it runs on deploy)"
        )


def unknown_revision_message(
    revision: str | None, head: str | None, local: bool, diverged: bool = False, shared: str | None = None
) -> str:
    """Explain, in one line, a database at a revision this code does not contain, and the ways out.

    Locally that is another branch's migration; on Heroku, a newer release's,
    seen after a rollback (which leaves the database as it is), unless the
    database's lineage shows it ``diverged``: then another line's revisions
    were deployed to the app, and ``shared`` is the newest revision both have.
    """
    target = shared or "<a revision both branches have>"
    newest = f"{shared} is the newest revision both have; " if shared else ""
    if not local and diverged:
        return (
            f"the database is at revision {revision}, which this code does not contain and which does not "
            f"descend from its head {head}: another line of migrations was deployed to this app (a branch, or "
            "revisions rewritten since), not a newer release of this code, so it cannot run on that schema. "
            f"Ways out: deploy the code that has {revision} again, `heroku run alembic downgrade {target}`, "
            "then deploy this code; or, on a review or staging app whose "
            "data can go, `heroku pg:reset` and deploy again"
        )
    if not local:
        return (
            f"the database is at revision {revision}, which this code does not contain: a newer release "
            f"migrated it, and a rollback leaves the database as it is. This code (head {head}) runs on that "
            "schema as long as the newer migrations only added to it. To undo them too: roll forward to the "
            f"release that has {revision} (heroku rollback vN), `heroku run alembic downgrade {head}`, then "
            "roll back again"
        )
    return (
        f"the database is at revision {revision}, which this code does not contain (probably applied on "
        f"another branch). Ways out: check out the branch that has {revision}, run `make downgrade "
        f"to={target}` ({newest}this code's head is {head}), come back and `make migrate`; "
        "if its file was deleted here, put it back (git checkout -- alembic/versions) and do the same; "
        "`make db-restore name=...` of a snapshot taken on this branch; "
        "or `make db-reset` to start over at this code's head (it deletes the local data: "
        "`make db-snapshot name=...` keeps a copy first)"
    )


def explain_command_error(
    error: str, requested: str | None, current: str | None, direction: str = "upgrade"
) -> tuple[str, bool] | None:
    """Put Alembic's terse refusals of where a command would go in plain words, with the way on.

    Returns the words and whether there was simply nothing to do (upgrade at
    head, downgrade at base: not a failure), or None for any other error.
    ``requested`` is the revision the command was given, ``current`` the
    database's (both as Alembic spells them), ``direction`` the command's
    (upgrade or downgrade).
    """
    if error.startswith("The script directory has multiple heads"):
        return str(split_history(script_directory().get_heads())), False
    if error.startswith("Ambiguous walk") and current and "," not in current:
        parents = script_directory().get_revision(current).down_revision
        if isinstance(parents, tuple):
            return (
                f"the database is at {current}, a merge of {', '.join(parents)}: make downgrade to={parents[0]} "
                "reverts the merge alone (both branches stay applied)",
                False,
            )
    head = head_revision()
    wrong_sign = "+" if direction == "downgrade" else "-"
    if error.startswith("Relative revision") and requested and requested.startswith(wrong_sign):
        return (
            f"{direction} {requested} goes the other way: make downgrade [to=-N|to=<revision>|to=base] goes down, "
            "make upgrade (the next one) and make migrate (all) go up",
            False,
        )
    if error.startswith("Relative revision") and requested and requested.startswith("+"):
        if current == head:
            return f"nothing to apply: the database is at this code's head ({head})", True
        return f"upgrade {requested} goes past this code's head ({head}): make migrate applies every pending one", False
    if error.startswith("Relative revision") and requested and requested.startswith("-"):
        if current is None:
            return "nothing to revert: the database has no migration applied (base)", True
        return f"downgrade {requested} goes below base: make downgrade to=base reverts every migration", False
    if error.startswith("Can't locate revision identified by") and requested:
        return (
            f"there is no revision {requested!r} in alembic/versions: make status lists them (or use base, -1)",
            False,
        )
    if error.startswith("Destination") and "is not a valid downgrade target" in error:
        return (
            f"{requested} is not below the database's revision ({current or 'base'}): downgrade only goes down; "
            "make migrate or make upgrade goes up",
            False,
        )
    if error == "Target database is not up to date.":
        return (
            f"the database is at {current or 'base'}, not at this code's head ({head}): make migrate first, "
            "so that autogenerate compares app/models.py with the schema the revisions make",
            False,
        )
    return None


def is_known(revision: str | None) -> bool:
    """Return whether every head in ``revision`` (comma-separated) is in this code's history."""
    if revision is None:
        return True
    scripts = script_directory()
    for rev in revision.split(","):
        try:
            if scripts.get_revision(rev) is None:
                return False
        except CommandError:  # "Can't locate revision identified by ..."
            return False
    return True


def pending_revisions(revision: str | None) -> tuple[Pending, ...]:
    """Return the revisions head needs that ``revision`` (heads comma-separated) lacks, oldest first.

    Counted as ancestors, not as one line of descent: a database at one
    side of a merge still lacks the other side's revisions. Empty if unknown.
    """
    scripts = script_directory()
    head = head_revision()
    if head is None or revision == head or not is_known(revision):
        return ()
    applied = {s.revision for rev in (revision or "").split(",") if rev for s in scripts.iterate_revisions(rev, "base")}
    needed = [s for s in scripts.iterate_revisions(head, "base") if s.revision not in applied]
    return tuple(Pending(s.revision, revision_message(s)) for s in reversed(needed))


def current_revision(migration_context: MigrationContext) -> str | None:
    """Return the revision the database is at, heads comma-separated (None before the first migration)."""
    return ",".join(migration_context.get_current_heads()) or None


def schema_state(connection: Connection) -> SchemaState:
    """Return the revision the database is at (None before the first migration)."""
    revision = current_revision(MigrationContext.configure(connection))
    if is_known(revision):
        found = rewired(connection, revision, script_directory())
        return SchemaState(revision=revision, head=head_revision(), pending=pending_revisions(revision), rewired=found)
    diverged, shared = lineage_verdict(connection, revision, script_directory())
    return SchemaState(revision=revision, head=head_revision(), known=False, diverged=diverged, shared=shared)


# --- The lineage: which line of revisions the database has run ---------------
#
# Alembic keeps only the revision a database is at. Two states need more:
# a revision this code lacks may be ahead on this code's own line (a
# rollback on Heroku, which must pass) or on another line (a branch
# deployed to a staging app), where this code cannot run; and a revision
# this code has may have been re-pointed by a rebase after it was applied,
# so that Alembic counts as applied revisions the database never ran. So
# each revision's parents are kept with the database as it is applied, and
# every run adds the ones it knows that are not kept yet: as the comment
# on Alembic's own table, so no table of the app's is added and
# autogenerate sees nothing new. pg_dump, snapshots and db-pull carry it.

LINEAGE_KEY = "alembic-lineage"
_COMMENT = text("SELECT obj_description(to_regclass('alembic_version'), 'pg_class')")


def _read_comment(connection: Connection) -> dict[str, Any] | None:
    """Return the JSON object in the comment on Alembic's table ({} when it has none); None when the
    comment holds something else (another tool's), which is then left alone."""
    raw = connection.execute(_COMMENT).scalar()
    if not raw:
        return {}
    try:
        kept = json.loads(raw)
    except ValueError:
        return None
    return kept if isinstance(kept, dict) else None


def _lineage_in(kept: dict[str, Any]) -> dict[str, list[str]]:
    """Return the parents of each revision kept in the comment's JSON ``kept`` (a malformed entry is skipped)."""
    parents = kept.get(LINEAGE_KEY)
    if not isinstance(parents, dict):
        return {}
    return {
        rev: list(down)
        for rev, down in parents.items()
        if isinstance(down, list) and all(isinstance(parent, str) for parent in down)
    }


def read_lineage(connection: Connection) -> dict[str, list[str]]:
    """Return the kept parents of each revision; empty when none are kept, or when they cannot be read."""
    try:
        return _lineage_in(_read_comment(connection) or {})
    except DBAPIError:
        connection.rollback()
        return {}


def _keep_lineage(connection: Connection, entries: dict[str, list[str]], replace: bool) -> None:
    """Add ``entries`` to the kept lineage (replacing kept ones when ``replace``); write only if it changed.

    The comment's other keys are kept; a comment that is not this JSON is left alone.
    """
    kept = _read_comment(connection)
    if kept is None:
        return
    parents = _lineage_in(kept)
    changed = {**parents, **entries} if replace else {**entries, **parents}
    if changed != parents:
        kept[LINEAGE_KEY] = changed
        # COMMENT takes a literal only: psycopg2 writes the parameter in as one, quoted.
        comment = json.dumps(kept, sort_keys=True, separators=(",", ":"))
        connection.exec_driver_sql("COMMENT ON TABLE alembic_version IS %s", (comment,))


def note_applied(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Alembic's on_version_apply hook: keep an applied (or stamped) revision's parents, as its file says
    now, in its transaction.

    In a savepoint: a role that may not comment on Alembic's table (one that
    does not own it) keeps the migration all the same.
    """
    connection = ctx.connection
    if ctx.as_sql or connection is None or not step.is_upgrade:
        return
    entries = {script.revision: _parents(script) for script in step.up_revisions if isinstance(script, Revision)}
    try:
        with connection.begin_nested():
            _keep_lineage(connection, entries, replace=True)
    except DBAPIError:
        pass  # said once, by record_lineage at the end of the run


def record_lineage(connection: Connection, scripts: ScriptDirectory) -> str | None:
    """Keep the parents of the revisions the database is at and below that are not kept yet (applied
    before they were kept), and commit.

    A kept entry is never replaced here: it is how the revision was applied.
    Return None, or why it could not be kept: the migration stands either way.
    """
    try:
        revision = current_revision(MigrationContext.configure(connection))
        try:
            applied = [s for rev in (revision or "").split(",") if rev for s in scripts.iterate_revisions(rev, "base")]
        except RevisionError:  # at a revision this code lacks: nothing to add of its own
            applied = []
        _keep_lineage(connection, {script.revision: _parents(script) for script in applied}, replace=False)
        connection.commit()
    except DBAPIError as exc:
        connection.rollback()
        return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return None


def _parents(script: Revision) -> list[str]:
    """Return the revisions ``script`` comes after: one, two for a merge, none for the first."""
    down = script.down_revision
    return list(down) if isinstance(down, (tuple, list)) else [down] if down else []


def _lineage_ancestors(revision: str, parents: dict[str, list[str]]) -> tuple[set[str], bool]:
    """Return ``revision``'s kept ancestors (heads comma-separated) and whether every one of them is kept."""
    ancestors: set[str] = set()
    complete = True
    todo = revision.split(",")
    while todo:
        rev = todo.pop()
        if rev in ancestors:
            continue
        ancestors.add(rev)
        if rev not in parents:
            complete = False
        todo.extend(parents.get(rev, []))
    return ancestors, complete


def lineage_verdict(connection: Connection, revision: str | None, scripts: ScriptDirectory) -> tuple[bool, str | None]:
    """Return whether ``revision`` (heads comma-separated) is on another line than ``scripts``' head, and the
    newest revision the two lines share (the head itself when the database is ahead on its line).

    Another line is claimed only when the whole kept lineage below the
    database's revision lacks the head: where an ancestor is not kept, it
    may lead to the head, and (False, None) says the lineage does not tell.
    """
    parents = read_lineage(connection)
    if not revision or any(rev not in parents for rev in revision.split(",")):
        return False, None
    ancestors, complete = _lineage_ancestors(revision, parents)
    shared = next((s.revision for s in scripts.walk_revisions() if s.revision in ancestors), None)
    if all(head in ancestors for head in scripts.get_heads()):
        return False, shared
    return (True, shared) if complete else (False, None)


@dataclass(frozen=True)
class Rewired:
    """Revisions this code counts as applied that the database never ran: ``revision`` was re-pointed."""

    revision: str
    applied_after: tuple[str, ...]
    now_after: tuple[str, ...]
    never_ran: tuple[Pending, ...]


def rewired(connection: Connection, revision: str | None, scripts: ScriptDirectory) -> Rewired | None:
    """Return what a rebase left unapplied under ``revision`` (a revision this code has), or None.

    Only a lineage kept for every ancestor tells: otherwise what the
    database ran is not known, and nothing is claimed; nor when the
    revisions it ran are gone from the code (squashed into new ones).
    """
    if not revision:
        return None
    parents = read_lineage(connection)
    ran, complete = _lineage_ancestors(revision, parents)
    if not complete:
        return None
    try:
        counted = [s for rev in revision.split(",") for s in scripts.iterate_revisions(rev, "base")]
    except RevisionError:  # a revision this code lacks: another question (lineage_verdict)
        return None
    missing = [s for s in counted if s.revision not in ran]
    moved = next((s for s in counted if s.revision in ran and set(parents[s.revision]) != set(_parents(s))), None)
    if not missing or moved is None:
        return None
    # A rebase puts revisions between a revision and its old parents, which stay below it. Old parents
    # this code lacks mean the history below was rewritten (squashed): the database ran its equivalent.
    if not set(parents[moved.revision]) <= {s.revision for s in scripts.iterate_revisions(moved.revision, "base")}:
        return None
    never = tuple(Pending(s.revision, revision_message(s)) for s in reversed(missing))
    return Rewired(moved.revision, tuple(parents[moved.revision]), tuple(_parents(moved)), never)


def rewired_message(found: Rewired, revision: str | None, local: bool) -> str:
    """Say, in one line, which revisions the database never ran and why (a rebase), and the ways out."""
    was, now = ", ".join(found.applied_after) or "base", ", ".join(found.now_after) or "base"
    said = (
        f"the database is at {revision}, but never ran {', '.join(str(p) for p in found.never_ran)}: "
        f"revision {found.revision} was applied after {was}, and this code has it after {now} (a rebase "
        "re-pointed it), so Alembic counts them as applied and no migration would run them. "
    )
    if local:
        return said + (
            f"Ways out: `make db-restore name=...` of a snapshot from before {found.revision} was applied, then "
            "`make migrate`; or `make db-reset` to start over at this code's head (it deletes the local data)"
        )
    return said + (
        f"Way out: deploy the code from before the rebase again, `heroku run alembic downgrade {was}`, then "
        "deploy this code"
    )
