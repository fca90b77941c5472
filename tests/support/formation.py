"""A process type of the user's own, added in the three places the README names: Procfile, heroku.yml, Compose.

The heroku.yml entry and the Compose service are the README's own blocks,
so a test that adds them proves what the README tells users to write.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.migrations.history import PROJECT_ROOT

# A worker that says which dyno it is (honcho sets no DYNO), with no SIGTERM handler of its own: SIGTERM
# ends it at once, on Heroku and in a Compose dyno alike.
WORKER_LINE = (
    'worker: python -c "import os, time; '
    "print('worker up as', os.environ.get('DYNO', 'no dyno'), flush=True); time.sleep(3600)\"\n"
)
FILES = ("Procfile", "heroku.yml", "docker-compose.yml")


def readme_yaml(first_line: str) -> str:
    """Return the README's YAML block that starts with the comment ``first_line``, without it."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(rf"```yaml\n{re.escape(first_line)}\n(.*?)```", readme, re.S)
    assert block, f"the README has no YAML block that starts with {first_line!r}"
    return block.group(1)


def add_worker(project: Path) -> dict[str, str]:
    """Add the worker to the project's three files as the README says; return what they held before."""
    before = {name: (project / name).read_text() for name in FILES}
    heroku_yml = before["heroku.yml"]
    assert heroku_yml.endswith("  web: bin/proc web\n"), "run: is heroku.yml's last section"
    service = readme_yaml("# docker-compose.yml, under services:")
    (project / "Procfile").write_text(before["Procfile"] + WORKER_LINE)
    (project / "heroku.yml").write_text(heroku_yml + readme_yaml("# heroku.yml, under run:"))
    compose = before["docker-compose.yml"]
    (project / "docker-compose.yml").write_text(compose.replace("\nservices:\n", f"\nservices:\n{service}\n", 1))
    return before
