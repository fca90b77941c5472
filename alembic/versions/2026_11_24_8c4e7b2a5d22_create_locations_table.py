"""Create locations table

Revision ID: 8c4e7b2a5d22
Revises: 3f1a2c9d0b11
Create Date: 2026-11-24 20:01:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "8c4e7b2a5d22"
down_revision: str | Sequence[str] | None = "3f1a2c9d0b11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create locations, owned by an account."""
    op.create_table(
        "locations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 200", name=op.f("ck_locations_name_length")),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_locations_latitude_range")),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name=op.f("ck_locations_longitude_range")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_locations_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
    )
    op.create_index(op.f("ix_locations_account_id"), "locations", ["account_id"])


def downgrade() -> None:
    """Drop locations."""
    op.drop_index(op.f("ix_locations_account_id"), table_name="locations")
    op.drop_table("locations")
