"""Index locations by account and id

Revision ID: ade3a66e1114
Revises: e2a6c8d4f944
Create Date: 2026-11-28 10:15:00.000000+00:00

A listing reads an account's locations a page at a time in id order
(``WHERE account_id = :a AND id > :after ORDER BY id LIMIT n``). An index on
(account_id, id) hands each page over as one short range, however many
locations the account or the table holds; it also serves every lookup the
index on account_id alone did (its first column), so that one goes.

Both are built and dropped CONCURRENTLY, so the table takes reads and
writes meanwhile; that cannot run in a transaction, hence the
autocommit_block(). IF [NOT] EXISTS lets a run that stopped halfway run again.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "ade3a66e1114"
down_revision: str | Sequence[str] | None = "e2a6c8d4f944"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Index locations by (account_id, id), in place of account_id alone."""
    with op.get_context().autocommit_block():
        op.create_index(
            op.f("ix_locations_account_id_locations_id"),
            "locations",
            ["account_id", "id"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            op.f("ix_locations_account_id"), table_name="locations", postgresql_concurrently=True, if_exists=True
        )


def downgrade() -> None:
    """Index locations by account_id alone again."""
    with op.get_context().autocommit_block():
        op.create_index(
            op.f("ix_locations_account_id"),
            "locations",
            ["account_id"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            op.f("ix_locations_account_id_locations_id"),
            table_name="locations",
            postgresql_concurrently=True,
            if_exists=True,
        )
