"""A process type of the user's own, added in the three places the README names: Procfile, heroku.yml, Compose.

The heroku.yml entry and the Compose service are the README's own blocks,
so a test that adds them proves what the README tells users to write. The
project may have types of its own already (a worker the user added as the
README says): the test's type takes a name none of them has, and the
tests that count types count theirs too (OTHER_TYPES).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import localstack
from app.migrations.history import PROJECT_ROOT

# The project's dyno types besides web, in the Procfile's order: a worker or a clock of the user's own.
OTHER_TYPES = [kind for kind in localstack.dyno_types() if kind != "web"]
# The test's own type: "worker", as the README names it, unless the project has one of that name.
WORKER = next(name for name in itertools.chain(["worker"], (f"worker{n}" for n in itertools.count(2)))
              if name not in localstack.procfile())  # fmt: skip
WORKER_SCALE = localstack.scale_variable(WORKER)

# A worker that says which dyno it is (honcho sets no DYNO), with no SIGTERM handler of its own: SIGTERM
# ends it at once, on Heroku and in a Compose dyno alike.
WORKER_LINE = (
    f'{WORKER}: python -c "import os, time; '
    "print('worker up as', os.environ.get('DYNO', 'no dyno'), flush=True); time.sleep(3600)\"\n"
)
FILES = ("Procfile", "heroku.yml", "docker-compose.yml")


def readme_yaml(first_line: str) -> str:
    """Return the README's YAML block that starts with the comment ``first_line``, without it, for the test's type."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(rf"```yaml\n{re.escape(first_line)}\n(.*?)```", readme, re.S)
    assert block, f"the README has no YAML block that starts with {first_line!r}"
    return re.sub(r"\bworker\b", WORKER, block.group(1)).replace("WORKER_SCALE", WORKER_SCALE)


def under_run(heroku_yml: str, entry: str) -> str:
    """Return heroku.yml with ``entry`` appended to its run: section, wherever that section is."""
    lines = heroku_yml.splitlines(keepends=True)
    start = lines.index("run:\n") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].strip() and not lines[i][0].isspace()), len(lines))
    while end > start and not lines[end - 1].strip():  # before the blank lines that end the section
        end -= 1
    return "".join([*lines[:end], entry, *lines[end:]])


def add_worker(project: Path) -> dict[str, str]:
    """Add the test's worker to the project's three files as the README says; return what they held before."""
    before = {name: (project / name).read_text() for name in FILES}
    service = readme_yaml("# docker-compose.yml, under services:")
    (project / "Procfile").write_text(before["Procfile"] + WORKER_LINE)
    (project / "heroku.yml").write_text(under_run(before["heroku.yml"], readme_yaml("# heroku.yml, under run:")))
    compose = before["docker-compose.yml"]
    (project / "docker-compose.yml").write_text(compose.replace("\nservices:\n", f"\nservices:\n{service}\n", 1))
    return before
