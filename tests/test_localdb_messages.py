"""bin/localdb's one-line failures: what Postgres said that matters, and no traceback at a prompt."""

from __future__ import annotations

import io

import pytest

from tests.support.scripts import bin_script

localdb = bin_script("localdb")

# psql's stderr when DROP DATABASE or ALTER DATABASE ... RENAME meets a session that has not gone yet.
IN_USE = (
    'ERROR:  database "app" is being accessed by other users\nDETAIL:  There is 1 other session using the database.\n'
)


@pytest.mark.parametrize(
    ("stderr", "said"),
    [
        (IN_USE, 'database "app" is being accessed by other users'),
        ('psql:<stdin>:3: ERROR:  relation "x" does not exist\nLINE 1: SELECT * FROM x\n',
         'relation "x" does not exist'),
        ('psql: error: connection to server on socket "/run/x" failed: No such file\n',
         'connection to server on socket "/run/x" failed: No such file'),
        ('FATAL:  terminating connection due to administrator command\nserver closed the connection\n',
         "terminating connection due to administrator command"),
        ("", ""),
    ],
)  # fmt: skip
def test_a_failed_psql_is_said_in_postgres_error_line_not_the_detail_after_it(stderr, said):
    """The retry of a swap waits on "being accessed by other users": it never saw it behind the DETAIL line."""
    assert localdb.psql_said(stderr) == said


def test_ctrl_d_at_a_confirmation_is_no_and_one_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    with pytest.raises(localdb.Failure, match=r"^not confirmed; nothing was changed$"):
        localdb.ask("Replace the local database?", "yes", "needs a terminal")
