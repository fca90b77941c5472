"""Let one make target at a time change this checkout's stack (up, down, scale, restart); another one waits its turn.

    bin/one_at_a_time.py PID_FILE PID TARGET

PID is the make running TARGET (the recipe shell's parent). While PID_FILE
names another make that still runs the target it names, this waits,
saying so once. Nothing has to give the turn back: once that make exits,
however it ended (done, failed, Ctrl-C, killed), its record is stale;
unless it led its process group (a terminal's job) and a process of that
group still runs. A closed terminal or a kill ends make at once, while a
step that must not stop halfway (bin/localdb's snapshot, restore, reset)
finishes out of sight: the turn is that step's until it is done.

Two `make up` at once raced each other: both stopped and started live
reload, wrote their watcher's pid into one file, and could leave a watcher
that `make down` no longer finds. Standard library only, like every script here.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple


def running_make(pid: int, target: str) -> bool:
    """Return whether ``pid`` is a make of ``target`` that still runs (not a pid reused by another program)."""
    args = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True).stdout.split()
    return bool(args) and re.search(r"(^|/)g?make$", args[0]) is not None and target in args[1:]


def group_runs(pgid: int) -> bool:
    """Return whether a process of the process group ``pgid`` still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it runs
        return True
    return True


def leads_its_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


class Turn(NamedTuple):
    """Whose turn it is: a make's pid, its target, and whether make itself has gone (its step finishing)."""

    pid: int
    target: str
    make_gone: bool


def take_turn(pid_file: Path, me: int, target: str) -> Turn | None:
    """Record ``me`` running ``target`` and return None, or return the Turn of the make it is."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(pid_file, "a+") as record:
        fcntl.flock(record, fcntl.LOCK_EX)  # the check and the write, one process at a time
        record.seek(0)
        recorded = record.read().split()
        if len(recorded) in (2, 3) and recorded[0].isdecimal():
            other, theirs, group = int(recorded[0]), recorded[1], recorded[2:] == ["group"]
            if other != me and running_make(other, theirs):
                return Turn(other, theirs, make_gone=False)
            if other != me and group and group_runs(other):
                return Turn(other, theirs, make_gone=True)
        record.seek(0)
        record.truncate()
        record.write(f"{me} {target}{' group' if leads_its_group(me) else ''}\n")
    return None


def main() -> int:
    pid_file, me, target = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C while waiting: nothing was done, no traceback
    waited_for = None
    while (other := take_turn(pid_file, me, target)) is not None:
        if other != waited_for:
            running = "was stopped, and its step is finishing" if other.make_gone else "is running"
            print(f"==> a make {other.target} of this checkout {running} (pid {other.pid}): make {target} waits for "
                  "it to finish", flush=True)  # fmt: skip
            waited_for = other
        time.sleep(0.2)
    if waited_for is not None:
        print(f"==> make {waited_for.target} is done; make {target} goes on", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
