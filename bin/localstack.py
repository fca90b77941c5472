"""What the bin/ scripts share: .env's settings, Compose's containers, a command's last word, how Ctrl-C ends them.

Standard library only: the scripts run with the host's python3 until the
virtualenv exists, then with its interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"


def read_env(name: str, default: str) -> str:
    """Return a setting as make and Compose see it: the environment, then .env, then ``default``."""
    if os.environ.get(name):
        return os.environ[name]
    return env_file(ENV_FILE).get(name) or default


def env_file(path: Path) -> dict[str, str]:
    """Return the NAME=value settings of a .env-style file (.env, .env.example), read as Compose reads them.

    An optional ``export``, blanks around ``=``, a byte-order mark; the last
    line that sets a name wins (the Makefile's ENV_READER reads it the same way).
    """
    lines = path.read_text(encoding="utf-8-sig").splitlines() if path.exists() else []
    setting = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)")
    pairs = (match.groups() for match in map(setting.fullmatch, lines) if match)
    return {name: unquoted(value) for name, value in pairs}


def unquoted(raw: str) -> str:
    """Return a .env value as Compose reads it: without its quotes, or without a trailing comment after a blank."""
    raw = raw.strip()
    if raw[:1] in ("'", '"') and raw.find(raw[0], 1) > 0:
        return raw[1 : raw.find(raw[0], 1)]
    return re.split(r"\s#", raw, maxsplit=1)[0].strip()


def write_env(name: str, value: str) -> None:
    """Set ``name=value`` in .env, replacing the line that sets it, if any.

    Written beside it and renamed over it: .env holds the SECRET_KEY and the
    user's settings, and a Ctrl-C between truncating and writing it in place
    would leave it empty.
    """
    target = ENV_FILE.resolve()  # a .env that links to the user's own file stays a link to it
    lines = target.read_text().splitlines() if target.exists() else []
    kept = [line for line in lines if not line.startswith(f"{name}=")]
    fd, name_of_copy = tempfile.mkstemp(prefix=".env.", dir=target.parent)
    copy = Path(name_of_copy)
    try:
        with os.fdopen(fd, "w") as out:
            out.write("\n".join([*kept, f"{name}={value}"]) + "\n")
        if target.exists():
            copy.chmod(stat.S_IMODE(target.stat().st_mode))
        copy.replace(target)
    finally:
        copy.unlink(missing_ok=True)


def procfile() -> dict[str, str]:
    """Return the Procfile's process types and their commands, in its order."""
    types = {}
    for line in (ENV_FILE.parent / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            types[name.strip()] = command.strip()
    return types


def dyno_types() -> list[str]:
    """Return the Procfile's process types that run as dynos: web, and a worker or clock of yours.

    Not release, which runs once per deploy, nor the one-offs, whose commands
    go through bin/oneoff (migrate, upgrade, downgrade). Each runs as the
    Compose service of its name; heroku.yml's run: must name it too.
    """
    return [name for name, command in procfile().items() if name != "release" and not command.startswith("bin/oneoff ")]


def scale_variable(kind: str) -> str:
    """Return the .env setting that keeps how many dynos of ``kind`` run (WEB_SCALE, WORKER_SCALE)."""
    return f"{kind.upper().replace('-', '_')}_SCALE"


def dyno_size() -> str:
    """Return DYNO_SIZE in the CLI's spelling (standard-2x), whichever case it was written in."""
    return read_env("DYNO_SIZE", "standard-1x").lower()


def compose_command() -> list[str]:
    """Return how to run Docker Compose: as make runs it (the plugin itself, faster), else `docker compose`."""
    return shlex.split(os.environ.get("COMPOSE_COMMAND") or "docker compose")


def compose_rows(text: str) -> list[dict[str, Any]]:
    """Return `docker compose ps --format json`'s rows: one JSON array, or one object per line."""
    text = text.strip()
    if text.startswith("["):
        rows: list[dict[str, Any]] = json.loads(text)
        return rows
    return [json.loads(line) for line in text.splitlines() if line]


def router_admin_args(router: str, config: str, command: str) -> list[str]:
    """Return the arguments of the `docker` that sends HAProxy's runtime API ``command`` (several, joined by
    ";") to the admin socket ``config`` (haproxy.cfg's text) binds on the loopback of container ``router``.

    Inside the container only: the socket is never published. What it prints is HAProxy's answer
    (nothing when each command took).
    """
    admin = re.search(r"^\s*stats socket ipv4@127\.0\.0\.1:(\d+) level admin", config, re.MULTILINE)
    send = f'exec 3<>/dev/tcp/127.0.0.1/{admin.group(1) if admin else 0} && printf "%s\\n" "$1" >&3 && cat <&3'
    return ["exec", router, "bash", "-c", send, "-", command]


# The marks the Heroku CLI puts before its messages: a small triangle (older), an angle quote (current).
HEROKU_MARKS = "\u25b8\u203a"


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """Return the last thing a failed command said (stderr first), without the Heroku CLI's marks (old
    and new arrows) or the "Error ID: ..." line the current CLI ends with."""
    lines = [line.strip(" \t" + HEROKU_MARKS) for line in (result.stderr or result.stdout).strip().splitlines()]
    lines = [line for line in lines if line and not line.startswith("Error ID:")]
    return lines[-1] if lines else f"exit status {result.returncode}"


def in_checkout(revision: str) -> bool:
    """Return whether alembic/versions here assigns each of ``revision``'s heads (comma-separated).

    Read from the files, not through Alembic: the host may have no virtualenv yet.
    """
    versions = ENV_FILE.parent / "alembic" / "versions"
    sources = []
    for path in versions.glob("[!.]*.py"):
        try:
            sources.append(path.read_text(errors="replace"))
        except OSError:
            continue

    def assigned(rev: str) -> bool:
        pattern = re.compile(r"^revision\b[^=\n]*=\s*['\"]" + re.escape(rev) + r"['\"]", re.M)
        return any(pattern.search(source) for source in sources)

    return all(assigned(rev) for rev in revision.split(","))


def end_interrupted() -> None:
    """End this process as interrupted by Ctrl-C, once it has said what it left: make then says
    "Interrupt" and stops, as for any command the terminal interrupts, rather than "Error 130"."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
