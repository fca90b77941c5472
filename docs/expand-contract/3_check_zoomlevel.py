"""Check zoomlevel without blocking writes

Contract, step 1: add the checks NOT VALID. Adding them takes a moment's
lock and no scan; rows written from now on must pass them.

Revision ID: 5afe00000003
Revises: 5afe00000002
"""

from alembic import op

revision = "5afe00000003"
down_revision = "5afe00000002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add NOT VALID checks: zoomlevel is set, and within 0..22."""
    op.create_check_constraint(
        op.f("ck_locations_zoomlevel_not_null"), "locations", "zoomlevel IS NOT NULL", postgresql_not_valid=True
    )
    op.create_check_constraint(
        op.f("ck_locations_zoomlevel_range"), "locations", "zoomlevel BETWEEN 0 AND 22", postgresql_not_valid=True
    )


def downgrade() -> None:
    """Drop both checks."""
    op.drop_constraint(op.f("ck_locations_zoomlevel_range"), "locations", type_="check")
    op.drop_constraint(op.f("ck_locations_zoomlevel_not_null"), "locations", type_="check")
