"""bin/localdb's steps that must not stop halfway: a Ctrl-C as one of their commands starts changes nothing it reads."""

from __future__ import annotations

import subprocess
import sys

from app.migrations.history import PROJECT_ROOT

# Runs a shielded command whose process gets Ctrl-C after the fork, before it
# ignores it: the moment a Ctrl-C to the terminal's process group can reach it.
DRIVER = """
import importlib.machinery, importlib.util, os, signal, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))  # as when it runs: the scripts beside it
loader = importlib.machinery.SourceFileLoader("localdb", sys.argv[1])
spec = importlib.util.spec_from_loader("localdb", loader)
localdb = sys.modules["localdb"] = importlib.util.module_from_spec(spec)  # its dataclasses look it up
loader.exec_module(localdb)
ignore = localdb.ignore_stopping

def pressed_then_ignore():
    os.kill(os.getpid(), signal.SIGINT)
    ignore()

localdb.ignore_stopping = pressed_then_ignore
with localdb.uninterrupted("the step"):
    said = localdb.run(["sh", "-c", "echo 0"])
print(f"{said.returncode} {said.stdout!r}")
"""


def test_a_ctrl_c_as_a_shielded_command_starts_neither_stops_it_nor_adds_to_its_output():
    """The script's own handler ran in the child and said "finishing first" into psql's output: a count of
    migrations read as one running, and a Ctrl-C'd snapshot stopped with the wrong error."""
    driver = subprocess.run(
        [sys.executable, "-c", DRIVER, str(PROJECT_ROOT / "bin" / "localdb")],
        capture_output=True, text=True, timeout=60, start_new_session=True,
    )  # fmt: skip
    assert driver.returncode == 0, driver.stderr
    assert driver.stdout == "0 '0\\n'\n", driver.stdout
