"""Create account table

The account's API tokens live in their own table, created here too: an
account is not usable without a way to sign in.

Revision ID: 3f1a2c9d0b11
Revises:
Create Date: 2026-11-24 20:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "3f1a2c9d0b11"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create account and account_token."""
    op.create_table(
        "account",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_account_email_lowercase")),
        sa.CheckConstraint("char_length(email) <= 254", name=op.f("ck_account_email_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("email", name=op.f("uq_account_email")),
    )
    op.create_table(
        "account_token",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_account_token_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("char_length(token_hash) = 64", name=op.f("ck_account_token_token_hash_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_token_token_hash")),
    )
    op.create_index(op.f("ix_account_token_account_id"), "account_token", ["account_id"])


def downgrade() -> None:
    """Drop account_token and account."""
    op.drop_index(op.f("ix_account_token_account_id"), table_name="account_token")
    op.drop_table("account_token")
    op.drop_table("account")
