"""`make check` passes on the project and stops unsafe or inconsistent migrations with a clear message."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.migrations.check import ADD_TO_THE_MODELS, MAKE_THEM_AGREE, WRITE_THE_REVISION
from app.migrations.history import PROJECT_ROOT
from app.models import ZOOM_DEFAULT
from devtools.docker import copy_project
from devtools.postgres import scratch_database
from tests.support.databases import failure_line, upgrade
from tests.support.docker import SUITE_VENV
from tests.support.history import SEED, check_history, head, history_with, revision_source

VENV = f"VENV={SUITE_VENV}"


def test_make_check_passes_on_the_project(server_url):
    # TEST_DATABASE_URL makes `alembic check` use the suite's server instead of starting another.
    result = subprocess.run(
        ["make", "check", VENV],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TEST_DATABASE_URL": server_url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed!" in result.stdout  # ruff
    assert "Add zoomlevel to locations: clean (waives" in result.stdout
    assert "==> migrations: all checks passed" in result.stdout


UNSAFE = {
    "required-column": (
        'op.add_column("locations", sa.Column("color", sa.Text(), nullable=False))',
        "adding-required-field",
    ),
    "blocking-index": (
        'op.create_index("ix_locations_name", "locations", ["name"])',
        "require-concurrent-index-creation",
    ),
    "type-change": (
        'op.alter_column("locations", "zoomlevel", type_=sa.BigInteger(), existing_type=sa.Integer())',
        "changing-column-type",
    ),
    "dropped-column": ('op.drop_column("locations", "zoomlevel")', "ban-drop-column"),
}


def unsafe_history(tmp_path: Path, upgrade_code: str, header: str = "") -> Path:
    source = revision_source("0a5afe0a5afe", head(), "Do something risky", upgrade_code)
    if header:
        source = source.replace("\n\ndef upgrade", f"\n\n{header}\n\n\ndef upgrade", 1)
    return history_with(tmp_path, ("2099_02_01_0a5afe0a5afe_do_something_risky.py", source))


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_an_unsafe_revision_fails_naming_file_rule_and_remedy(tmp_path, case):
    code, rule = UNSAFE[case]
    result = check_history(unsafe_history(tmp_path, code), "--skip-alembic-check")
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if f": {rule}:" in line]
    assert "alembic/versions/2099_02_01_0a5afe0a5afe_do_something_risky.py" in line
    assert "Instead: " in line
    assert "0a5afe0a5afe  Do something risky: findings" in result.stdout
    if case == "blocking-index":  # which statement, when a revision has several
        assert f"{rule}: During normal index creation" in line and " In: `CREATE INDEX ix_locations_name" in line


def test_a_revision_that_needs_a_database_for_its_sql_is_a_finding_and_the_rest_are_still_listed(tmp_path):
    """The lint runs each revision with no database (--sql): a data migration that reads what it updated
    must guard that with as_sql, and one that does not is a finding, not a crash that hides the others."""
    code, rule = UNSAFE["blocking-index"]
    reads = 'while op.get_bind().execute(sa.text("UPDATE locations SET name = name")).rowcount == 1000:\n    pass'
    after = revision_source("0b0b0b0b0b0b", "0a5afe0a5afe", "Backfill in batches", reads)
    ini = unsafe_history(tmp_path, code)
    (ini.parent / "alembic" / "versions" / "2099_02_02_0b0b0b0b0b0b_backfill_in_batches.py").write_text(after)
    result = check_history(ini, "--skip-alembic-check")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [offline] = [line for line in result.stderr.splitlines() if ": offline-sql: " in line]
    assert "alembic/versions/2099_02_02_0b0b0b0b0b0b_backfill_in_batches.py:" in offline
    assert "AttributeError" in offline and "if not op.get_context().as_sql:" in offline
    assert any(f": {rule}:" in line for line in result.stderr.splitlines()), "the other finding is still listed"
    assert "0b0b0b0b0b0b  Backfill in batches: fails without a database" in result.stdout


RENAMED_BY_AUTOGENERATE = """op.add_column("locations", sa.Column("zoom_level", sa.Integer(), nullable=True))
op.drop_column("locations", "zoomlevel")"""


def test_a_column_dropped_and_another_added_without_a_copy_is_a_finding_unless_copied_or_waived(tmp_path):
    """Autogenerate's rename: the dropped column's values would be lost."""
    for case in ("renamed", "copied", "waived"):
        (tmp_path / case).mkdir()
    result = check_history(unsafe_history(tmp_path / "renamed", RENAMED_BY_AUTOGENERATE), "--skip-alembic-check")
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if ": drop-and-add-column: " in line]
    assert "it drops locations.zoomlevel and adds locations.zoom_level, copying nothing" in line
    assert "new_column_name=" in line and "Instead: copy them before the drop" in line

    copied = RENAMED_BY_AUTOGENERATE.replace(
        "\nop.drop", '\nop.execute("UPDATE locations SET zoom_level = zoomlevel")\nop.drop'
    )
    result = check_history(unsafe_history(tmp_path / "copied", copied), "--skip-alembic-check")
    assert "drop-and-add-column" not in result.stderr, result.stderr
    waiver = "# squawk-waive: drop-and-add-column, ban-drop-column -- zoomlevel was never read; zoom_level is new"
    result = check_history(unsafe_history(tmp_path / "waived", RENAMED_BY_AUTOGENERATE, waiver), "--skip-alembic-check")
    assert "drop-and-add-column:" not in result.stderr, result.stderr
    assert "(waives ban-drop-column, drop-and-add-column)" in result.stdout


def test_a_waiver_with_a_reason_accepts_the_rule(tmp_path):
    code, rule = UNSAFE["dropped-column"]
    header = f"# squawk-waive: {rule} -- the app stopped reading zoomlevel two releases ago"
    result = check_history(unsafe_history(tmp_path, code, header), "--skip-alembic-check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Do something risky: clean (waives {rule})" in result.stdout


def test_a_waiver_without_a_reason_is_itself_a_finding(tmp_path):
    code, rule = UNSAFE["dropped-column"]
    result = check_history(unsafe_history(tmp_path, code, f"# squawk-waive: {rule}"), "--skip-alembic-check")
    assert result.returncode == 1
    assert f"waiver-without-reason: the waiver of {rule} gives no reason." in result.stderr


# What the app answers in a copy of the project (its own app and history): argv method, path, JSON body;
# prints "status json".
ANSWER = (
    "import json, os, sys; from app import create_app; "
    "app = create_app({'database_url': os.environ['DATABASE_URL'], 'environment': 'testing'}); "
    "r = app.test_client().open(sys.argv[2], method=sys.argv[1], json=json.loads(sys.argv[3])); "
    "print(r.status_code, json.dumps(r.get_json()))"
)


def test_two_heads_are_one_line_everywhere_until_make_merge_joins_them(tmp_path, server_url):
    """Two branches that each added a revision, merged in git: every command says how to join them."""
    project = copy_project(tmp_path / "project")
    versions = project / "alembic" / "versions"
    for rev, message, table in (
        ("aaaa1111aaaa", "One branch", "branch_one"),
        ("bbbb2222bbbb", "Another", "branch_two"),
    ):
        create = f'op.create_table("{table}", sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True))'
        source = revision_source(rev, head(), message, create, f'op.drop_table("{table}")')
        (versions / f"2099_03_01_{rev}_{table}.py").write_text(source)

    def inside(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=project, env={**os.environ, **env}, capture_output=True, text=True, timeout=600)

    def answer(url: str, method: str, path: str, body: object = None) -> tuple[int, dict]:
        said = inside(sys.executable, "-c", ANSWER, method, path, json.dumps(body), DATABASE_URL=url)
        status, answered = said.stdout.split(" ", 1)
        return int(status), json.loads(answered)

    def readyz(url: str) -> tuple[int, dict]:
        return answer(url, "GET", "/readyz")

    alembic = [sys.executable, "-m", "alembic"]
    said = "has 2 heads, aaaa1111aaaa (One branch), bbbb2222bbbb (Another), as after a git merge of branches"
    with scratch_database(server_url, "split") as url:
        status = inside(sys.executable, "-m", "app.migrations", "status", DATABASE_URL=url)
        assert status.returncode != 0 and status.stderr.startswith(f"status: alembic/versions {said}"), status.stderr
        assert len(status.stderr.splitlines()) == 1 and "make merge joins them" in status.stderr
        migrate = inside(*alembic, "upgrade", "head", DATABASE_URL=url)
        assert migrate.returncode != 0 and said in failure_line(migrate) and "Traceback" not in migrate.stderr
        status, body = readyz(url)
        assert (status, body["database"]) == (503, "unknown") and said in body["message"]
        # The API, on a table no revision has made yet: the same words, not a 500.
        status, body = answer(url, "POST", "/accounts", {"email": "split@example.com", "password": "a long password"})
        assert status == 503 and said in body["error"]["message"], body
        lint = inside(sys.executable, "-m", "app.migrations", "check", TEST_DATABASE_URL=server_url)
        assert "single-head: the history has 2 heads (aaaa1111aaaa, bbbb2222bbbb). Instead: " in lint.stderr
        assert "make merge" in lint.stderr and "alembic-check" not in lint.stderr, "one finding, not two"

        empty = ["make", "revision", "empty=1", "m=Data fix", VENV]
        drafted = subprocess.run(empty, cwd=project, capture_output=True, text=True, timeout=600)
        assert drafted.returncode != 0 and f"head: alembic/versions {said}" in drafted.stderr, drafted.stderr
        assert not list(versions.glob("*data_fix*")), "no revision written on either head"

        broken = versions / "2099_03_02_broken.py"
        broken.write_text("def upgrade(:\n")
        refused = subprocess.run(["make", "merge", VENV], cwd=project, capture_output=True, text=True, timeout=600)
        assert refused.returncode != 0 and "error: alembic cannot read the history: SyntaxError" in refused.stderr
        broken.unlink()
        before = set(versions.glob("*.py"))
        merged = subprocess.run(["make", "merge", VENV], cwd=project, capture_output=True, text=True, timeout=600)
        assert merged.returncode == 0, merged.stdout + merged.stderr
        [written] = set(versions.glob("*.py")) - before  # the user's own merges may be there too
        merge = re.search(r"^revision: str = ['\"](\w+)['\"]", written.read_text(), re.M).group(1)
        lint = inside(sys.executable, "-m", "app.migrations", "check", "--skip-alembic-check")
        assert lint.returncode == 0 and f"{merge}  Merge heads: clean" in lint.stdout, lint.stdout + lint.stderr
        assert inside(*alembic, "upgrade", "head", DATABASE_URL=url).returncode == 0
        assert readyz(url)[0] == 200

        back = inside(*alembic, "downgrade", "-1", DATABASE_URL=url)
        assert back.returncode != 0
        assert failure_line(back).startswith(f"the database is at {merge}, a merge of ")
        assert failure_line(back).endswith("reverts the merge alone (both branches stay applied)")
        assert inside(*alembic, "downgrade", "aaaa1111aaaa", DATABASE_URL=url).returncode == 0
        status, body = readyz(url)
        assert status == 503 and set(body["revision"].split(",")) == {"aaaa1111aaaa", "bbbb2222bbbb"}
        assert body["pending"] == [{"revision": merge, "message": "Merge heads"}]

        # At both sides, "the latest revision" is either: downgrade -1 names each, and <revision>@-1 reverts one alone.
        ambiguous = inside(*alembic, "downgrade", "-1", DATABASE_URL=url)
        assert ambiguous.returncode != 0 and "UserWarning" not in ambiguous.stderr, ambiguous.stderr
        assert "(the sides of a merge): downgrade -1 would revert any one of them, so name it: " in failure_line(
            ambiguous
        )
        assert "make downgrade to=bbbb2222bbbb@-1 reverts 'Another'" in failure_line(ambiguous)
        assert set(readyz(url)[1]["revision"].split(",")) == {"aaaa1111aaaa", "bbbb2222bbbb"}, "nothing reverted"
        assert inside(*alembic, "downgrade", "bbbb2222bbbb@-1", DATABASE_URL=url).returncode == 0
        assert readyz(url)[1]["revision"] == "aaaa1111aaaa", "that side alone"


def alembic_check_lines(result: subprocess.CompletedProcess[str], way_out: str = WRITE_THE_REVISION) -> list[str]:
    """Return what each alembic-check finding says, less the file, the rule and ``way_out``, which each ends with."""
    findings = [line.strip() for line in result.stderr.splitlines() if ": alembic-check: " in line]
    said = [line.split(": alembic-check: ", 1)[1] for line in findings if line.endswith(f" Instead: {way_out}")]
    return [line.removesuffix(f" Instead: {way_out}") for line in said]


def test_models_ahead_of_the_migrations_fail_alembic_check_with_a_line_per_difference(tmp_path, server_url):
    ini = history_with(tmp_path, upto=SEED[1][0])  # cut before zoomlevel and favorites: the models still declare them
    result = check_history(ini, TEST_DATABASE_URL=server_url)
    assert result.returncode == 1
    differences = alembic_check_lines(result)
    added = [
        line
        for line in result.stderr.splitlines()
        if ": alembic-check: the models and the migrations differ: add " in line
    ]
    assert len(added) >= 3 and len(differences) == len(added), "each addition says: write the revision"
    assert "the models and the migrations differ: add table favorites." in differences
    assert "the models and the migrations differ: add index ix_favorites_location_id on favorites (location_id)." in (
        differences
    )
    assert (
        "the models and the migrations differ: add column locations.zoomlevel INTEGER NOT NULL, "
        f"server default {ZOOM_DEFAULT}." in differences
    )
    assert "New upgrade operations detected" not in result.stderr, "Alembic's repr of its diffs is not shown"


def test_a_revision_the_models_disagree_with_is_one_line_per_difference(tmp_path, server_url):
    """Changed nullability, type and default of columns both have; an index and a table only the migrations have."""
    disagree = """
    op.alter_column("locations", "name", existing_type=sa.Text(), nullable=True)
    op.alter_column("locations", "zoomlevel", type_=sa.BigInteger(), server_default=sa.text("5"))
    op.create_index("ix_locations_name", "locations", ["name"])
    op.create_table("stray", sa.Column("id", sa.BigInteger(), primary_key=True))
    """
    source = revision_source("d15a9ee0d15a", head(), "Disagree with the models", disagree)
    ini = history_with(tmp_path, ("2099_06_01_d15a9ee0d15a_disagree_with_the_models.py", source))
    result = check_history(ini, TEST_DATABASE_URL=server_url)
    assert result.returncode == 1
    differ = "the models and the migrations differ:"
    # Only the migrations have them: the model may be what is missing, so that comes first in the way out.
    assert sorted(alembic_check_lines(result, ADD_TO_THE_MODELS)) == [
        f"{differ} drop index ix_locations_name on locations (name).",
        f"{differ} drop table stray.",
    ]
    assert sorted(alembic_check_lines(result, MAKE_THEM_AGREE)) == [
        f"{differ} {line}."
        for line in (
            "locations.name: NOT NULL in the models, nullable in the migrations",
            "locations.zoomlevel: INTEGER in the models, BIGINT in the migrations",
            f"locations.zoomlevel: server default {ZOOM_DEFAULT} in the models, server default 5 in the migrations",
        )
    ]
    assert alembic_check_lines(result) == [], "no advice to write a revision that would undo what was meant"


def test_a_revision_that_fails_on_an_empty_database_is_named_with_its_error(tmp_path, server_url):
    """Not Alembic's last log line, nor advice to write a revision."""
    broken = revision_source("5e15e15e15e1", head(), "Typo", 'op.execute("UPDATE no_such_table SET x = 1")')
    ini = history_with(tmp_path, ("2099_05_01_5e15e15e15e1_typo.py", broken))
    result = check_history(ini, TEST_DATABASE_URL=server_url)
    assert result.returncode == 1
    [finding] = [line for line in result.stderr.splitlines() if "alembic-check:" in line]
    assert "`alembic upgrade head` failed on an empty database: upgrade of revision 5e15e15e15e1 (Typo)" in finding
    assert 'relation "no_such_table" does not exist' in finding and "fix the revision it names" in finding


def test_without_a_postgres_to_compare_on_alembic_check_is_one_finding_and_the_rest_still_run(tmp_path):
    """Docker down, or offline with no image to start: what to do, not a traceback; the lint still runs."""
    ini = history_with(tmp_path)
    # An image no registry has: its pull fails with internet too (and at once without an engine).
    result = check_history(ini, TEST_DATABASE_URL="", POSTGRES_IMAGE="local/no-such-postgres:0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    [finding] = [line.strip() for line in result.stderr.splitlines() if ": alembic-check: " in line]
    assert "no Postgres to compare on: a container of local/no-such-postgres:0 did not start (" in finding
    assert finding.endswith(" Instead: start Docker (and connect, for its first pull), set POSTGRES_IMAGE to a "
                            "Postgres image you have, or TEST_DATABASE_URL to a server")  # fmt: skip
    assert f"{head()}  " in result.stdout, "the lint of each revision ran"


def test_revision_refuses_to_write_an_empty_autogenerate_unless_asked(tmp_path, server_url):
    ini = history_with(tmp_path)
    versions = tmp_path / "alembic" / "versions"
    before = set(versions.iterdir())
    with scratch_database(server_url, "revision") as url:
        upgrade(url, "head")
        env = {**os.environ, "DATABASE_URL": url}
        base = [sys.executable, "-m", "alembic", "-c", str(ini)]
        refused = subprocess.run(
            [*base, "revision", "--autogenerate", "-m", "Nothing"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert refused.returncode != 0
        message = failure_line(refused)
        assert "no revision was written" in message and "empty=1" in message
        assert "app/models.py defines or imports" in message, "a model app/models.py never imports is not seen"
        assert set(versions.iterdir()) == before
        allowed = subprocess.run(
            [*base, "-x", "empty=1", "revision", "--autogenerate", "-m", "Backfill colors"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert allowed.returncode == 0, allowed.stderr
    [new] = set(versions.iterdir()) - before
    assert new.name.endswith("_backfill_colors.py")
    source = new.read_text()
    assert "import sqlalchemy as sa" in source and "from alembic import op" in source, "kept for the data migration"


def test_make_check_runs_every_check_and_reports_every_finding(tmp_path, server_url):
    project = copy_project(tmp_path / "project")
    unsafe = revision_source(
        "0a5afe0a5afe", head(), "Add color", "op.add_column('locations', sa.Column('color', sa.Text(), nullable=False))"
    )
    (project / "alembic" / "versions" / "2099_02_01_0a5afe0a5afe_add_color.py").write_text(unsafe)
    result = subprocess.run(
        ["make", "check", VENV], cwd=project, env={**os.environ, "TEST_DATABASE_URL": server_url},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    formatting = output[output.index("==> ruff format --check") : output.index("==> single head")]
    assert "alembic/versions/2099_02_01_0a5afe0a5afe_add_color.py" in formatting
    assert "2099_02_01_0a5afe0a5afe_add_color.py: adding-required-field:" in output  # squawk
    assert "alembic-check:" in output, "alembic check still ran: the models have no color column"
    [summary] = [line for line in result.stderr.splitlines() if line.startswith("error: make check failed:")]
    assert "ruff-format" in summary and "migrations" in summary


def test_make_format_fixes_formats_and_wraps_a_long_line_in_one_run(tmp_path):
    """A line over the length limit is a finding ruff check cannot fix, but ruff format can: format still runs."""
    project = copy_project(tmp_path / "project")
    draft = project / "app" / "draft.py"
    draft.write_text(
        "import os\n\n\ndef settings():\n    return dict(alpha_alpha_alpha=1, beta_beta_beta=2, gamma_gamma_gamma=3, "
        "delta_delta_delta=4, epsilon_epsilon_epsilon=5, zeta=6)\n"
    )
    result = subprocess.run(["make", "format", VENV], cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    source = draft.read_text()
    assert "import os" not in source, "fixed: the unused import is gone"
    assert max(len(line) for line in source.splitlines()) <= 120, "formatted: the long line is wrapped"
