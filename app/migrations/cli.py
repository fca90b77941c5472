"""One command line for the migration operations: ``python -m app.migrations release|status|check``.

A Click group, as Flask's own ``flask`` command is, but without building the
app: these commands need DATABASE_URL, and only release (the deploy's gate
before web starts) checks web's SECRET_KEY. The Procfile's
release type, ``make status``, ``make check`` and the tests all call it.
Failures that are the environment's, not the code's, are one line here:
a bad setting exits 2, a database that does not answer exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError

from app.config import ConfigError, load_settings
from app.migrations.history import ALEMBIC_INI, HistoryError
from app.migrations.safety import db_error_reason


def _run(name: str, command: Callable[[], int]) -> None:
    """Run ``command``, turning a bad setting or an unreachable database into one line and an exit status."""
    try:
        status = command()
    except ConfigError as exc:
        click.echo(f"{name}: {exc}", err=True)
        status = 2
    except OperationalError as exc:
        click.echo(f"{name}: cannot reach the database: {db_error_reason(exc)}", err=True)
        status = 1
    except HistoryError as exc:
        click.echo(f"{name}: {exc}", err=True)
        status = 1
    sys.exit(status)


@click.group(help="Database operations: release, status, check, seed (only release checks SECRET_KEY).")
def cli() -> None:
    pass


@cli.command()
def release() -> None:
    """Wait for the database, print the plan, migrate to head (Heroku's release phase)."""
    from app.migrations import release as releasing

    _run("release", lambda: releasing.run(load_settings()))


@cli.command()
def status() -> None:
    """List every revision, applied or pending, and where the database is."""
    from app.migrations import status as reporting

    _run("status", lambda: reporting.run(load_settings()))


@cli.command()
def head() -> None:
    """Print the history's one head; with several (after a git merge), say how to join them and fail."""
    from app.migrations.history import head_revision

    def show() -> int:
        click.echo(head_revision() or "base")
        return 0

    _run("head", show)


@cli.command()
def seed() -> None:
    """Load the demo accounts, locations and favourites; again adds nothing (Rails' db:seed)."""
    from app.migrations import seed as seeding

    _run("seed", lambda: seeding.run(load_settings()))


@cli.command()
@click.option("--config", "ini", type=click.Path(dir_okay=False, path_type=Path), default=ALEMBIC_INI,
              help="alembic.ini of the history to check")  # fmt: skip
@click.option("--skip-alembic-check", is_flag=True, help="no database: skip `alembic check`")
def check(ini: Path, skip_alembic_check: bool) -> None:
    """Check the history before it ships: one head, squawk's lint of each revision's SQL, `alembic check`."""
    from app.migrations import check as checking

    _run("check", lambda: checking.run(ini.resolve(), skip_alembic_check))
