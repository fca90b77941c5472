"""Add zoomlevel to locations

A schema and data migration in three steps: add the column as nullable,
give every existing row the default zoom of 12, then make it NOT NULL with
that server default and a range check. Postgres runs all three in this
revision's transaction, so a failure leaves the table as it was.

Revision ID: b7d9e1f3a633
Revises: 8c4e7b2a5d22
Create Date: 2026-11-24 20:02:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7d9e1f3a633"
down_revision: str | Sequence[str] | None = "8c4e7b2a5d22"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ZOOM = 12  # a copy, not an import: a migration must not change when the app does

# Zero-downtime lint (make check) findings this revision accepts, and why:
# squawk-waive: prefer-bigint-over-int -- zoomlevel holds 0 to 22 (a CHECK says so); int is ample.
# squawk-waive: adding-not-nullable-field, constraint-missing-not-valid -- one step, one transaction: locations
#   is locked while it is backfilled and checked. Fine for the seed's small table (and lock_timeout keeps it from
#   queueing behind traffic); for a big table use the expand/contract form in README "Writing a safe migration".


def upgrade() -> None:
    """Add locations.zoomlevel, backfill 12, then require it."""
    op.add_column("locations", sa.Column("zoomlevel", sa.Integer(), nullable=True))
    locations = sa.table("locations", sa.column("zoomlevel", sa.Integer()))
    op.execute(locations.update().where(locations.c.zoomlevel.is_(None)).values(zoomlevel=DEFAULT_ZOOM))
    op.alter_column("locations", "zoomlevel", nullable=False, server_default=sa.text(str(DEFAULT_ZOOM)))
    op.create_check_constraint(op.f("ck_locations_zoomlevel_range"), "locations", "zoomlevel BETWEEN 0 AND 22")


def downgrade() -> None:
    """Drop locations.zoomlevel (the zoom levels are lost)."""
    op.drop_constraint(op.f("ck_locations_zoomlevel_range"), "locations", type_="check")
    op.drop_column("locations", "zoomlevel")
