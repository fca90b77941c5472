"""Check the migration history before it reaches production (part of `make check`).

1. a single head;
2. a zero-downtime lint of each revision's SQL (offline `alembic upgrade prev:rev
   --sql`) with squawk; a revision may waive a rule only with a reason:
       # squawk-waive: rule-name[, other-rule] -- why this is safe here
3. `alembic check`: the models and the migrations agree (needs a database:
   TEST_DATABASE_URL's server, else a throwaway container as in the tests).

Each finding names the revision file, the rule and what to do instead.
Exit status 1 when anything is found. Usage:
    python -m app.migrations check [--config alembic.ini] [--skip-alembic-check]
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory

from app.migrations.history import PROJECT_ROOT as ROOT
from app.migrations.history import HistoryError, alembic_config, checked, revision_line, revision_message

WAIVER = re.compile(r"#\s*squawk-waive:\s*(?P<rules>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*(?:--\s*(?P<reason>.*))?$")


@dataclass
class Finding:
    file: str
    rule: str
    message: str
    advice: str
    # The SQL the finding is about, when the revision has more than one statement it could be.
    where: str = ""

    def __str__(self) -> str:
        at = f" In: {self.where}" if self.where else ""
        return f"{self.file}: {self.rule}: {self.message}{at} Instead: {self.advice}"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def relative(path: str | Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def waivers(rev: Script) -> tuple[set[str], list[Finding]]:
    """Return the rules ``rev`` waives, and findings for waivers that give no reason."""
    rules: set[str] = set()
    problems = []
    for line in Path(rev.path).read_text().splitlines():
        match = WAIVER.search(line.strip())
        if not match:
            continue
        names = {name.strip() for name in match["rules"].split(",")}
        if not (match["reason"] or "").strip():
            message = f"the waiver of {', '.join(sorted(names))} gives no reason."
            advice = "say why it is safe: # squawk-waive: rule -- reason"
            problems.append(Finding(relative(rev.path), "waiver-without-reason", message, advice))
            continue
        rules |= names
    return rules, problems


def upgrade_sql(config: Config, scripts: ScriptDirectory, rev: Script) -> str:
    """Return the SQL `alembic upgrade <down>:<rev> --sql` emits, less Alembic's own bookkeeping.

    What `alembic upgrade` does, with the start given as revisions rather
    than as "a:b" text: a merge revision starts from all of its parents, so
    its SQL is its own and not one branch's revisions again.
    """
    buffer = io.StringIO()
    config.output_buffer = buffer

    def steps(current: Any, context: Any) -> Any:
        return scripts._upgrade_revs(rev.revision, current)

    with EnvironmentContext(
        config, scripts, fn=steps, as_sql=True, starting_rev=rev.down_revision, destination_rev=rev.revision
    ):
        scripts.run_env()
    statements = [s for s in buffer.getvalue().split(";\n") if "alembic_version" not in s]
    return ";\n".join(statements)


def offline_failure(rev: Script, exc: Exception) -> Finding:
    """Return the finding for a revision whose code fails when run for its SQL alone (`--sql`, no database).

    op.get_bind() is None then, so a data migration that reads rows or counts
    what it updated fails; the lint cannot see its SQL, and Heroku's release
    would run it fine, so it is a finding, not a crash of make check.
    """
    where = revision_line(exc) or relative(rev.path)
    return Finding(
        where,
        "offline-sql",
        f"the revision fails when Alembic runs it for its SQL alone (--sql, no database): {type(exc).__name__}: {exc}.",
        "run what needs the database's answers only `if not op.get_context().as_sql:` "
        "(docs/expand-contract/2_backfill_zoomlevel.py does), so the lint sees the rest",
    )


def lint(config: Config, scripts: ScriptDirectory, squawk: str) -> list[Finding]:
    from devtools.project import POSTGRES_MAJOR  # the major Heroku and Compose run (devtools is not in the image)

    findings: list[Finding] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rev in reversed(list(scripts.walk_revisions())):
            waived, problems = waivers(rev)
            findings += problems
            sql_file = Path(tmp) / f"{rev.revision}.sql"
            try:
                sql_file.write_text(upgrade_sql(config, scripts, rev))
            except Exception as exc:  # the revision's own code, run with no database behind it
                findings.append(offline_failure(rev, exc))
                print(f"    {rev.revision}  {revision_message(rev)}: fails without a database", flush=True)
                continue
            args = [squawk, "--reporter", "json", "--pg-version", POSTGRES_MAJOR, str(sql_file)]
            if waived:
                args += ["--exclude", ",".join(sorted(waived))]
            result = subprocess.run(args, capture_output=True, text=True)
            if result.returncode not in (0, 1) or not result.stdout.strip().startswith("["):
                raise SystemExit(f"error: squawk failed on {relative(rev.path)}: {result.stderr.strip()}")
            sql = sql_file.read_text().splitlines()
            for item in json.loads(result.stdout):
                advice = item.get("help") or f"see https://squawkhq.com/docs/{item['rule_name']}"
                where = statement_at(sql, item)
                findings.append(Finding(relative(rev.path), item["rule_name"], item["message"], advice, where))
            state = "clean" if result.stdout.strip() in ("", "[]") else "findings"
            note = f" (waives {', '.join(sorted(waived))})" if waived else ""
            print(f"    {rev.revision}  {revision_message(rev)}: {state}{note}", flush=True)
    return findings


def statement_at(sql: list[str], item: dict[str, Any]) -> str:
    """Return the start of the SQL squawk points at (its line and columns, from 0), as one short line."""
    line, start = item.get("line"), item.get("column") or 0
    if not isinstance(line, int) or not 0 <= line < len(sql):
        return ""
    end = item.get("column_end") if item.get("line_end") == line else None
    text = " ".join(sql[line][start:end].split()).rstrip(";")
    return f"`{text[:100]}...`" if len(text) > 100 else f"`{text}`"


def alembic_failure(args: list[str], result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """Return (message, advice) for a failed `alembic upgrade head` or `alembic check`, from its FAILED line."""
    output = (result.stdout + result.stderr).strip().splitlines()
    failed = [line.removeprefix("FAILED: ") for line in output if line.startswith("FAILED: ")]
    said = failed[-1] if failed else (output[-1] if output else "(no output)")
    if args[0] == "upgrade":
        return (
            f"`alembic upgrade head` failed on an empty database: {said}",
            "fix the revision it names (make migrate says the same of the Compose database)",
        )
    return f"`alembic check` failed: {said}", 'write the revision for the difference: make revision m="..."'


def alembic_check(ini: Path) -> list[Finding]:
    """Run the real `alembic check` against a database migrated to head."""
    from devtools.postgres import running_postgres, scratch_database

    def run(url: str) -> list[Finding]:
        env = {**os.environ, "DATABASE_URL": url}
        for args in (["upgrade", "head"], ["check"]):
            result = subprocess.run(
                [sys.executable, "-m", "alembic", "-c", str(ini), *args],
                cwd=ROOT, env=env, capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                return [Finding(relative(ini.parent / "alembic"), "alembic-check", *alembic_failure(args, result))]
        return []

    server = os.environ.get("TEST_DATABASE_URL")
    if server:
        with scratch_database(server, "check") as url:
            return run(url)
    with running_postgres() as server_url, scratch_database(server_url, "check") as url:
        return run(url)


def run(ini: Path, skip_alembic_check: bool = False) -> int:
    """Run every check of the history behind ``ini``; print each finding; return the exit status."""
    config = alembic_config(ini, quiet=True)
    try:
        scripts = checked(ScriptDirectory.from_config(config))
    except HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    findings: list[Finding] = []

    say("single head")
    heads = scripts.get_heads()
    joined = len(heads) == 1  # the lint and alembic check need one line of history
    if not joined:
        message = f"the history has {len(heads)} heads ({', '.join(sorted(heads))})."
        advice = "join them in a merge revision: make merge"
        findings.append(Finding(relative(ini.parent / "alembic" / "versions"), "single-head", message, advice))
    else:
        print(f"    {heads[0]}", flush=True)

    squawk = shutil.which("squawk", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if squawk is None:
        raise SystemExit("error: squawk is not installed: make venv (it comes with squawk-cli)")
    if joined:
        say("zero-downtime lint of each revision's SQL (squawk)")
        findings += lint(config, scripts, squawk)
    else:
        say("zero-downtime lint of each revision's SQL (squawk): skipped until the heads are joined")

    if skip_alembic_check:
        say("alembic check: skipped")
    elif not joined:
        say("alembic check: skipped until the heads are joined")
    else:
        say("alembic check: do the models and the migrations agree?")
        found = alembic_check(ini)
        # Alembic compares tables, columns, types, indexes and foreign keys; not CHECK constraints or enum values.
        print("    no" if found else "    yes, as far as autogenerate compares (not CHECKs or enum values)", flush=True)
        findings += found

    if findings:
        print(f"\n{len(findings)} problem(s):", file=sys.stderr)
        for finding in findings:
            print(f"  {finding}", file=sys.stderr)
        return 1
    say("migrations: all checks passed")
    return 0
