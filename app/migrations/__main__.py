"""``python -m app.migrations``: see app/migrations/cli.py."""

from app.migrations.cli import cli

cli(prog_name="python -m app.migrations")
