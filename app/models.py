"""Tables of the sample app, declared once for the app and for Alembic.

``alembic check`` compares these with the migration history, so a change
here without a revision (or the other way round) fails the test suite.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Lengths are CHECK constraints on text columns, not VARCHAR(n): a CHECK can
# be replaced (NOT VALID, then VALIDATE) without blocking reads and writes,
# while changing VARCHAR(n) takes an ACCESS EXCLUSIVE lock (squawk's
# prefer-text-field).

# Deterministic constraint names, so migrations can drop what they created.
# Every column is in the name (column_0_N): named after the first alone,
# UNIQUE (account_id, title) and UNIQUE (account_id, starts_on) would share a
# name, and autogenerate would see one replace the other. SQLAlchemy shortens
# a name past Postgres's 63 bytes with a hash, the same way every time.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_MAX = 200
EMAIL_MAX = 254
ZOOM_MIN, ZOOM_MAX, ZOOM_DEFAULT = 0, 22, 12


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    """A user of the API; the email is stored lower-cased, so unique means case-insensitively unique."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint(f"char_length(email) <= {EMAIL_MAX}", name="email_length"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AccountToken(Base):
    """An API token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "account_token"
    __table_args__ = (CheckConstraint("char_length(token_hash) = 64", name="token_hash_length"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Location(Base):
    """A saved map position with the zoom level to show it at."""

    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint(f"char_length(name) BETWEEN 1 AND {NAME_MAX}", name="name_length"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        CheckConstraint(f"zoomlevel BETWEEN {ZOOM_MIN} AND {ZOOM_MAX}", name="zoomlevel_range"),
        # An account's locations in id order, a page at a time (app/locations.py); also its lookups by account.
        Index(None, "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float] = mapped_column(Double)
    longitude: Mapped[float] = mapped_column(Double)
    zoomlevel: Mapped[int] = mapped_column(Integer, server_default=text(str(ZOOM_DEFAULT)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Favorite(Base):
    """An account's mark on one of its locations; gone when either side is deleted."""

    __tablename__ = "favorites"

    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    location_id: Mapped[int] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
