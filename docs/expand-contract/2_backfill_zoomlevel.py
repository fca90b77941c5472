"""Backfill zoomlevel in batches

A data migration that never holds a long lock: each batch of rows is its own
short transaction (outside the revision's), so writers wait for one batch at
most. With the constant default above nothing is NULL unless written so; the
same loop fills a computed value. Offline (--sql) it prints one UPDATE.

Revision ID: 5afe00000002
Revises: 5afe00000001
"""

import sqlalchemy as sa
from alembic import op

revision = "5afe00000002"
down_revision = "5afe00000001"
branch_labels = None
depends_on = None

BATCH = 1000
DEFAULT_ZOOM = 12
locations = sa.table("locations", sa.column("id", sa.BigInteger()), sa.column("zoomlevel", sa.Integer()))


def upgrade() -> None:
    """Set zoomlevel to 12 where it is NULL, a batch at a time."""
    missing = sa.select(locations.c.id).where(locations.c.zoomlevel.is_(None)).limit(BATCH).scalar_subquery()
    fill = locations.update().where(locations.c.id.in_(missing)).values(zoomlevel=DEFAULT_ZOOM)
    if op.get_context().as_sql:
        op.execute(fill)
        return
    with op.get_context().autocommit_block():
        while op.get_bind().execute(fill).rowcount == BATCH:
            pass


def downgrade() -> None:
    """Nothing to undo: the values stay until the column goes."""
