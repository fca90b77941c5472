"""Add favorites table

Revision ID: e2a6c8d4f944
Revises: b7d9e1f3a633
Create Date: 2026-11-24 20:03:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e2a6c8d4f944"
down_revision: str | Sequence[str] | None = "b7d9e1f3a633"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create favorites: account/location pairs, deleted with either side."""
    op.create_table(
        "favorites",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("location_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_favorites_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_favorites_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "location_id", name=op.f("pk_favorites")),
    )
    op.create_index(op.f("ix_favorites_location_id"), "favorites", ["location_id"])


def downgrade() -> None:
    """Drop favorites."""
    op.drop_index(op.f("ix_favorites_location_id"), table_name="favorites")
    op.drop_table("favorites")
