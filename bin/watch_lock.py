"""Compose's watch lock: clear it once it is stale, never while a watch holds it.

    bin/watch_lock.py stale LOG             after a refused `docker compose watch`
    bin/watch_lock.py stopped PROJECT PID   after live reload's watch was stopped

`docker compose watch` takes a lock, a file holding its pid, and leaves it
behind when it is stopped (docker/compose#11069). Stopped, it takes over a
second to exit: a watch started meanwhile (make scale right after make up)
refused, the pid still running. And once that pid belongs to another
program, every later watch of the project refuses.

``stale``: given the log of such a refusal, remove the stale file and exit
0 (try again), or say in one line what to do and exit 1; exit 2 for any
other failure. ``stopped``: wait (a few seconds at most) until the watch in
that process group is gone, then remove the file if it still names that pid; so
the next watch starts at once, and no project leaves a file behind.

The file is looked for where Compose keeps it on Linux ($XDG_RUNTIME_DIR,
else ~/.docker) and macOS, under its name since 2.24 or before. Standard
library only, like every script here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

# How long a stopped watch may take to exit before the next one is started anyway.
STOPPING_WAIT = 10.0
# A `docker compose watch` by its command line (ps, pgrep -f), however Compose
# was started; the Makefile's `watching` asks pgrep the same (a twin: make has no import).
WATCH_ARGS = "compose.* watch"


def lock_files(project: str) -> list[Path]:
    """Return the places Compose may keep ``project``'s watch lock in, those that exist."""
    runtime = [Path(os.environ["XDG_RUNTIME_DIR"])] if os.environ.get("XDG_RUNTIME_DIR") else []
    places = [*runtime, *(d / "docker-compose" for d in runtime), Path.home() / ".docker" / "docker-compose",
              Path.home() / "Library" / "Application Support" / "com.docker.compose"]  # fmt: skip
    names = (f"{project}.pid", f"docker-compose.{project}.pid")
    return [place / name for place in places for name in names if (place / name).is_file()]


def remove_naming(project: str, pid: str) -> Path | None:
    """Remove ``project``'s lock if it names ``pid``; return it, or None if none did."""
    for lock in lock_files(project):
        if lock.read_text().strip() == pid:
            lock.unlink()
            return lock
    return None


def watch_runs(pgid: int) -> bool:
    """Return whether a `docker compose watch` still runs in the process group ``pgid``: a pid file long
    left may name another program's group by now."""
    found = subprocess.run(["pgrep", "-g", str(pgid), "-f", WATCH_ARGS], capture_output=True)
    return found.returncode == 0


def stale(log: Path) -> int:
    said = re.search(r'exclusive lock for project "([^"]+)": process with PID (\d+) is still running', log.read_text())
    if not said:
        return 2
    project, pid = said.groups()
    args = subprocess.run(["ps", "-o", "args=", "-p", pid], capture_output=True, text=True).stdout
    if re.search(WATCH_ARGS, args):
        print(f"error: live reload did not start: another docker compose watch of {project} runs (pid {pid}): "
              "stop it, then make up", file=sys.stderr)  # fmt: skip
        return 1
    what = "another program's now" if args.strip() else "gone"
    lock = remove_naming(project, pid)
    if lock is not None:
        print(f"==> live reload: removed Compose's stale watch lock ({lock}: pid {pid} is {what})")
        return 0
    print(f"error: live reload did not start: Compose's watch lock for {project} names pid {pid}, {what}: "
          f"delete {project}.pid in Compose's run directory (docker/compose#11069), then make up",
          file=sys.stderr)  # fmt: skip
    return 1


def stopped(project: str, pid: int) -> int:
    deadline = time.monotonic() + STOPPING_WAIT
    while watch_runs(pid):
        if time.monotonic() > deadline:
            return 0  # still going: a watch started now refuses, and ``stale`` says what to do
        time.sleep(0.1)
    remove_naming(project, str(pid))
    return 0


def main(args: list[str]) -> int:
    if len(args) == 2 and args[0] == "stale":
        return stale(Path(args[1]))
    if len(args) == 3 and args[0] == "stopped" and args[2].isdecimal():
        return stopped(args[1], int(args[2]))
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
