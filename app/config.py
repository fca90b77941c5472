"""Settings read once from the environment: the only place that reads it.

The app factory, ``alembic/env.py``, gunicorn and the tests all get the
database URL from here, so Heroku's ``postgres://`` scheme and its TLS
requirement are handled in exactly one place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

ENVIRONMENTS = ("production", "development", "testing")


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; the message is one line."""


def normalize_database_url(url: str) -> str:
    """Return ``url`` as a SQLAlchemy URL that uses psycopg2.

    Heroku hands out ``postgres://``, which SQLAlchemy does not know, and
    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, which this
    project does not install; both become ``postgresql+psycopg2://``. A URL
    that already names a driver is left alone.
    """
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """Return the normalised ``DATABASE_URL`` or fail with one clear line."""
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        raise ConfigError("DATABASE_URL is not set: point it at a PostgreSQL database")
    url = normalize_database_url(url)
    if not url.startswith("postgresql"):
        raise ConfigError(f"DATABASE_URL must be a postgres:// or postgresql:// URL, not {url.split(':', 1)[0]}://")
    return url


def connect_args(url: str, on_heroku: bool, timeout: int = 5) -> dict[str, Any]:
    """Return the psycopg2 connection arguments for ``url``.

    On Heroku (``DYNO`` set) the database refuses plain connections, so TLS is
    required unless the URL already says otherwise; locally the container has
    no certificate and TLS is left to the URL.
    """
    args: dict[str, Any] = {"connect_timeout": timeout, "options": "-c timezone=UTC"}
    if on_heroku and "sslmode=" not in url:
        args["sslmode"] = "require"
    return args


def migration_connect_args(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return connection arguments for Alembic, which needs no SECRET_KEY."""
    env = os.environ if environ is None else environ
    url = database_url(env)
    return connect_args(url, bool(env.get("DYNO")), _int(env, "DB_CONNECT_TIMEOUT", 5))


@dataclass(frozen=True)
class MigrationSettings:
    """How migrations protect production: timeouts and the wait for other migrators."""

    lock_timeout: str = "5s"
    statement_timeout: str = "60s"
    lock_wait: int = 300


def migration_settings(environ: Mapping[str, str] | None = None) -> MigrationSettings:
    """Return the migration safety settings from MIGRATION_* variables."""
    env = os.environ if environ is None else environ
    defaults = MigrationSettings()
    settings = MigrationSettings(
        lock_timeout=env.get("MIGRATION_LOCK_TIMEOUT", "").strip() or defaults.lock_timeout,
        statement_timeout=env.get("MIGRATION_STATEMENT_TIMEOUT", "").strip() or defaults.statement_timeout,
        lock_wait=_int(env, "MIGRATION_LOCK_WAIT", defaults.lock_wait),
    )
    for name, value in (
        ("MIGRATION_LOCK_TIMEOUT", settings.lock_timeout),
        ("MIGRATION_STATEMENT_TIMEOUT", settings.statement_timeout),
    ):
        if not re.fullmatch(r"\d+\s*(ms|s|min|h)?", value):
            raise ConfigError(f"{name} must be a duration such as 5s, 500ms or 2min, got {value!r}")
    return settings


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to know about where and how it runs."""

    database_url: str
    environment: str = "production"
    secret_key: str | None = None
    on_heroku: bool = False
    db_pool_size: int = 5
    db_connect_timeout: int = 5
    db_ping_after: int = 10
    proxy_hops: int = 1
    max_content_length: int = 64 * 1024
    # werkzeug's default; the test suite passes a cheaper scrypt to save CPU, never weaker in production.
    password_hash_method: str = "scrypt"

    @property
    def debug(self) -> bool:
        return self.environment == "development"

    @property
    def testing(self) -> bool:
        return self.environment == "testing"

    def engine_options(self) -> dict[str, Any]:
        """Return keyword arguments for the app's pooled ``create_engine``."""
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_pool_size,
            "pool_recycle": 300,
            "connect_args": connect_args(self.database_url, self.on_heroku, self.db_connect_timeout),
        }

    def validate(self) -> Settings:
        """Return self, or raise ConfigError naming the first bad setting."""
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {self.environment!r}")
        if not self.secret_key and self.environment == "production":
            raise ConfigError("SECRET_KEY is not set: it is required when APP_ENV=production (the default)")
        if not 1 <= self.db_pool_size <= 100:
            raise ConfigError(f"DB_POOL_SIZE must be between 1 and 100, got {self.db_pool_size}")
        if self.proxy_hops < 0:
            raise ConfigError(f"PROXY_HOPS must be 0 or more, got {self.proxy_hops}")
        if self.environment != "testing" and self.password_hash_method != "scrypt":
            raise ConfigError("password_hash_method can only be changed when APP_ENV=testing")
        return self


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``), then apply overrides."""
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    environment = env.get("APP_ENV", "production").strip().lower() or "production"
    values: dict[str, Any] = {
        "environment": environment,
        "secret_key": env.get("SECRET_KEY") or None,
        "on_heroku": bool(env.get("DYNO")),
        "db_pool_size": _int(env, "DB_POOL_SIZE", 5),
        "db_connect_timeout": _int(env, "DB_CONNECT_TIMEOUT", 5),
        "db_ping_after": _int(env, "DB_PING_AFTER", 10),
        "proxy_hops": _int(env, "PROXY_HOPS", 1),
    }
    if "database_url" in overrides:
        overrides["database_url"] = normalize_database_url(overrides["database_url"])
    else:
        values["database_url"] = database_url(env)
    values.update(overrides)
    return Settings(**values).validate()
