"""The Heroku CLI as bin/doctor, bin/localdb and make use it: which app, whether it can answer, config vars.

Standard library only, like the scripts beside it: they run with the host's
python3, before any virtualenv exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import dockerignore
from localstack import last_line

INSTALL = "https://devcenter.heroku.com/articles/heroku-cli"


class HerokuError(Exception):
    """The Heroku CLI cannot answer; the message is one line with the way out."""


class NotInstalled(HerokuError):
    """There is no `heroku` on PATH."""


class NotLoggedIn(HerokuError):
    """`heroku auth:whoami` fails."""


class NoApp(HerokuError):
    """Neither HEROKU_APP nor a git remote `heroku` names an app."""


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the Heroku CLI; a CLI that does not answer (a network that drops packets) is a HerokuError."""
    try:
        return subprocess.run(["heroku", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HerokuError(f"heroku {' '.join(args)} did not answer within {timeout:g} s: check the network") from None


def app_name() -> str | None:
    """Return HEROKU_APP, else the app of the git remote `heroku`, else None."""
    if os.environ.get("HEROKU_APP"):
        return os.environ["HEROKU_APP"]
    remote = subprocess.run(["git", "remote", "get-url", "heroku"], capture_output=True, text=True)
    found = re.search(r"heroku\.com[:/]([\w-]+?)(?:\.git)?$", remote.stdout.strip()) if remote.returncode == 0 else None
    return found.group(1) if found else None


def require_cli() -> None:
    """Raise unless the Heroku CLI is installed and logged in, naming which step failed."""
    if shutil.which("heroku") is None:
        raise NotInstalled(f"the Heroku CLI is not installed: see {INSTALL}")
    whoami = run("auth:whoami", timeout=60)
    if whoami.returncode != 0:
        said = (whoami.stderr.strip().splitlines() or [""])[-1].strip()
        raise NotLoggedIn(f"the Heroku CLI is not logged in{f' ({said})' if said else ''}: run heroku login")


def require_app() -> str:
    """Return the app to talk to, once the CLI is installed and logged in; else raise which step failed."""
    require_cli()
    app = app_name()
    if app is None:
        raise NoApp("no Heroku app: set HEROKU_APP=name, or add the git remote heroku (heroku git:remote --app name)")
    return app


def database_url(app: str) -> str:
    """Return the app's DATABASE_URL (never printed)."""
    result = run("config:get", "DATABASE_URL", "--app", app)
    url = result.stdout.strip()
    if result.returncode != 0:
        raise HerokuError(f"heroku config:get DATABASE_URL --app {app} failed: {last_line(result)}")
    if not url:
        raise HerokuError(f"{app} has no DATABASE_URL: heroku addons:create heroku-postgresql --app {app}")
    return url


# Read by the build, or by Heroku beside it, even where .dockerignore leaves them out of the image.
BUILD_INPUTS = {"Dockerfile", ".dockerignore", "heroku.yml"}


def git(*args: str) -> str:
    """Return what ``git args`` prints; a git that cannot run or fails is a HerokuError."""
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError as exc:
        raise HerokuError(f"git cannot run ({exc.strerror}): Heroku deploys what git pushes") from None
    if result.returncode != 0:
        raise HerokuError(f"git {args[0]} failed: {last_line(result)}")
    return result.stdout


def image_rules() -> list[dockerignore.Rules]:
    """Return .dockerignore's rules as Heroku builds them (HEAD's) and as make up does (the file's)."""
    head = subprocess.run(["git", "show", "HEAD:.dockerignore"], capture_output=True, text=True)
    try:
        with open(".dockerignore", encoding="utf-8") as file:
            mine = file.read()
    except FileNotFoundError:
        mine = ""
    try:
        return [dockerignore.parse(head.stdout if head.returncode == 0 else ""), dockerignore.parse(mine)]
    except dockerignore.PatternError as exc:
        raise HerokuError(f"{exc}: fix it, then make heroku-deploy") from None


def outside_every_image(path: str, rules: list[dockerignore.Rules]) -> bool:
    """Whether both builds leave ``path`` out, and no build reads it: then it makes no difference."""
    return path not in BUILD_INPUTS and all(dockerignore.left_out(path, each) for each in rules)


# git status's letters, in words.
STATES = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed", "C": "copied", "U": "unmerged"}
STATES["?"] = "untracked"


def require_committed() -> None:
    """Raise unless the checkout is its last commit: Heroku builds what is pushed, `make up` the files as they are.

    A file left out of a commit serves locally and is missing on Heroku
    (or an edit is), which is the "works locally" this project is here to end.
    Files .dockerignore leaves out (README.md, tests/) are in neither image.
    """
    # Every untracked file, not its directory alone: an exception (!) may let one into the image.
    status = git("status", "--porcelain=v1", "-z", "--untracked-files=all")
    rules = image_rules()
    fields = iter(status.split("\0"))
    named: list[str] = []
    outside: list[str] = []
    for entry in fields:
        if not entry:
            continue
        code, paths = entry[:2].strip()[:1], [entry[3:]]
        if code and code in "RC":  # -z puts a rename's or copy's old path in a field of its own
            paths.append(next(fields, ""))
        said = f"{entry[3:]} ({STATES.get(code, 'changed')})"
        # What every build leaves out of the image is in neither image, so it makes no difference.
        (outside if all(outside_every_image(path, rules) for path in paths if path) else named).append(said)
    if named:
        raise HerokuError(
            f"{len(named)} file(s) differ from HEAD, the commit Heroku would build (make up builds your files as "
            f"they are): {first_few(named)}: commit them, or git stash -u, then make heroku-deploy"
        )
    if outside:
        print(f"==> left out of the image by .dockerignore, so no difference: {first_few(outside)}")
    ignored = ignored_but_built(rules[1])
    if ignored:
        raise HerokuError(f"{ignored_in_image(ignored)}, then make heroku-deploy")


def ignored_but_built(mine: dockerignore.Rules | None = None) -> list[str]:
    """Return what git ignores and make up's build puts in the image (a directory as ``build/``); ``mine``
    is the working tree's .dockerignore rules, when the caller has read them already.

    Heroku builds what git pushes, so its image lacks them: an app that
    reads one (a local settings file, assets built on this machine) works
    here and fails there, however clean ``git status`` is.
    """
    status = git("status", "--porcelain=v1", "-z", "--ignored=traditional", "--untracked-files=normal")
    if mine is None:
        mine = image_rules()[1]  # make up's build reads the working tree's .dockerignore
    ignored = [entry[3:] for entry in status.split("\0") if entry.startswith("!! ")]
    return [path for path in ignored if path not in BUILD_INPUTS and not dockerignore.left_out(path.rstrip("/"), mine)]


def ignored_in_image(paths: list[str]) -> str:
    """Say what ``paths`` (from ignored_but_built) are and the two ways out, in one line."""
    return (
        f"{len(paths)} path(s) git ignores are in the image make up builds, so Heroku's (built from what git "
        f"pushes) lacks them: {first_few(paths)}: add them to .dockerignore, so that make up builds without them "
        "too, or commit them (git add -f)"
    )


def first_few(names: list[str], shown: int = 5) -> str:
    """Return the first names and how many more: one line, however many files differ."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


if __name__ == "__main__":  # `bin/heroku_cli.py app`: the app make's Heroku targets talk to, or why none
    try:
        if sys.argv[1:] == ["committed"]:
            require_committed()
        elif sys.argv[1:] == ["cli"]:
            require_cli()
        else:
            print(require_app())
    except HerokuError as exc:
        sys.exit(f"error: {exc}")
