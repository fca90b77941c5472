"""Add zoomlevel to locations, nullable, default 12

Expand: a nullable column with a constant default is a catalogue change on
PostgreSQL 11+ (no table rewrite, the lock lasts milliseconds), and every
existing row reads as 12 at once. Deploy code that writes zoomlevel after this.

Revision ID: 5afe00000001
Revises: 8c4e7b2a5d22
"""

import sqlalchemy as sa
from alembic import op

revision = "5afe00000001"
down_revision = "8c4e7b2a5d22"
branch_labels = None
depends_on = None

# squawk-waive: prefer-bigint-over-int -- zoomlevel holds 0 to 22 (a CHECK says so); int is ample.


def upgrade() -> None:
    """Add locations.zoomlevel as nullable with server default 12."""
    op.add_column("locations", sa.Column("zoomlevel", sa.Integer(), server_default=sa.text("12"), nullable=True))


def downgrade() -> None:
    """Drop locations.zoomlevel."""
    op.drop_column("locations", "zoomlevel")
