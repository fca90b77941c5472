"""Settings read once from the environment: the only place that reads it.

Each setting is declared once below: its name, type, default, the variable
it comes from and its check. The app factory, ``alembic/env.py``, the release
process and ``make status`` all build their engines from a ``Settings``, so
Heroku's ``postgres://`` scheme, its TLS requirement and the connect timeout
are handled in exactly one place.

A frozen dataclass rather than pydantic-settings: the checks are a handful of
one-liners, the messages stay the exact one-line errors users see, and the
image does not carry pydantic (about 11 MB) for it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ENVIRONMENTS = ("production", "development", "testing")

# A check returns what is wrong with a value, or None.
Check = Callable[[Any], "str | None"]


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; the message is one line."""


SECRET_KEY_MISSING = "SECRET_KEY is not set: it is required when APP_ENV=production (the default)"
SECRET_KEY_WAY_OUT = (
    "heroku config:set SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') on Heroku, "
    "a line SECRET_KEY=... in .env locally"
)


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


def _postgres_url(url: str) -> str | None:
    if not url:
        return "is not set: point it at a PostgreSQL database"
    if not url.startswith("postgresql"):
        return f"must be a postgres:// or postgresql:// URL, not {url.split(':', 1)[0]}://"
    from sqlalchemy.engine import make_url  # here: bin/doctor imports this module without SQLAlchemy

    try:
        make_url(url)  # as the engine will read it (a password may hold / # ?)
    except ValueError:  # the error quotes a piece of the URL, which may be the password: say nothing of it
        return "is not a valid URL: its port must be a number (postgres://user:password@host:5432/name)"
    return None


def _one_of(*allowed: str) -> Check:
    return lambda value: None if value in allowed else f"must be one of {', '.join(allowed)}, got {value!r}"


def _between(low: int, high: int) -> Check:
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}, got {value}"


def _at_least(low: int) -> Check:
    return lambda value: None if value >= low else f"must be {low} or more, got {value}"


def _duration(value: str) -> str | None:
    if re.fullmatch(r"\d+\s*(ms|s|min|h)?", value):
        return None
    return f"must be a duration such as 5s, 500ms or 2min, got {value!r}"


def _setting(
    default: Any, env: str | None = None, check: Check | None = None, parse: Callable[[str], Any] | None = None
) -> Any:
    """Declare a setting: its default, the variable it is read from, how it is parsed and checked."""
    return field(default=default, metadata={"env": env, "check": check, "parse": parse})


@dataclass(frozen=True)
class Settings:
    """Everything the app and the migration tools need to know about where and how they run."""

    # Required: there is no sensible default database.
    database_url: str = _setting("", "DATABASE_URL", _postgres_url, parse=normalize_database_url)
    environment: str = _setting("production", "APP_ENV", _one_of(*ENVIRONMENTS), parse=str.lower)
    secret_key: str | None = _setting(None, "SECRET_KEY")
    # Heroku sets DYNO in every dyno (web.1, run.1234): there, the database takes TLS only.
    dyno: str = _setting("", "DYNO")
    # Compose sets LOCAL_STACK=1 beside its DYNO: a dyno without it is Heroku's.
    local_stack: bool = _setting(False, "LOCAL_STACK", parse=lambda value: value == "1")
    db_pool_size: int = _setting(5, "DB_POOL_SIZE", _between(1, 100))
    db_connect_timeout: int = _setting(5, "DB_CONNECT_TIMEOUT", _at_least(1))
    db_ping_after: int = _setting(10, "DB_PING_AFTER", _at_least(0))
    # Seconds a worker's pool may have no connection in use before it closes them (0: kept open).
    db_pool_idle: int = _setting(60, "DB_POOL_IDLE", _at_least(0))
    # How long one statement may run (0: no limit). gunicorn.conf.py sets it
    # for web, so a request gives up before the router's 30 s (H12).
    db_statement_timeout: str = _setting("0", "DB_STATEMENT_TIMEOUT", _duration)
    proxy_hops: int = _setting(1, "PROXY_HOPS", _at_least(0))
    max_content_length: int = _setting(64 * 1024)
    # Days a token works after it is issued; then the client signs in again (POST /tokens).
    token_ttl_days: int = _setting(30, "TOKEN_TTL_DAYS", _between(1, 3650))
    # werkzeug's default; the test suite passes a cheaper scrypt to save CPU, never weaker in production.
    password_hash_method: str = _setting("scrypt")
    # How migrations protect production (app/migrations/safety.py): fail fast behind a
    # busy table, bound each statement, wait this long for another migrator.
    migration_lock_timeout: str = _setting("5s", "MIGRATION_LOCK_TIMEOUT", _duration)
    migration_statement_timeout: str = _setting("60s", "MIGRATION_STATEMENT_TIMEOUT", _duration)
    migration_lock_wait: int = _setting(300, "MIGRATION_LOCK_WAIT", _at_least(0))
    # How long the release process waits for the database to answer, in seconds.
    release_db_wait: float = _setting(30.0, "RELEASE_DB_WAIT", _at_least(0))

    @property
    def on_heroku(self) -> bool:
        """Whether this runs in a dyno: Heroku's, or one of Compose's (which adds LOCAL_STACK)."""
        return bool(self.dyno)

    @property
    def local(self) -> bool:
        """Whether this runs on the developer's machine (Compose, make local, alembic by hand), not on Heroku.

        It changes what a database at a revision this code lacks means: locally
        another branch migrated it, and the release stops with the ways out; on
        Heroku a newer release did, and this is a rollback, which keeps the
        database as it is (Dev Center: "Releases"), so the release passes.
        """
        return self.local_stack or not self.on_heroku

    @property
    def debug(self) -> bool:
        return self.environment == "development"

    @property
    def testing(self) -> bool:
        return self.environment == "testing"

    def connect_args(self) -> dict[str, Any]:
        """Return the psycopg2 connection arguments, for the app's engine and the migration engine alike.

        On Heroku (``DYNO`` set) the database refuses plain connections, so TLS is
        required unless the URL already says otherwise; locally TLS is left to the URL.
        A dyno's connections carry its name (unless the URL names them), so
        pg_stat_activity, ``heroku pg:ps`` and a migration's lock message say
        which dyno holds a session.
        """
        # What the URL's query says reaches the server too: SQLAlchemy passes it on, but connect_args
        # would replace its options (a search_path, say) and connect_timeout. The app's settings come
        # after the URL's options, so they win where the two set the same thing.
        from sqlalchemy.engine import make_url  # as in _database_url: doctor imports this module without it

        query = make_url(self.database_url).query  # as the engine reads it (a password may hold ? or #)
        given = query.get("options", ())
        options = " ".join([*([given] if isinstance(given, str) else given), "-c timezone=UTC"])
        args: dict[str, Any] = {"options": options}
        if "connect_timeout" not in query:
            args["connect_timeout"] = self.db_connect_timeout
        if self.dyno:
            args["fallback_application_name"] = self.dyno
        if self.on_heroku and "sslmode=" not in self.database_url:
            args["sslmode"] = "require"
        return args

    def engine_options(self) -> dict[str, Any]:
        """Return keyword arguments for the app's pooled ``create_engine``: web's statements are time-bounded."""
        args = self.connect_args()
        args["options"] += f" -c statement_timeout={self.db_statement_timeout.replace(' ', '')}"
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_pool_size,
            "pool_recycle": 300,
            "connect_args": args,
        }

    def validate(self) -> Settings:
        """Return self, or raise ConfigError naming the first bad setting."""
        for f in fields(self):
            check, value = f.metadata["check"], getattr(self, f.name)
            problem = check(value) if check and value is not None else None
            if problem:
                raise ConfigError(f"{f.metadata['env'] or f.name} {problem}")
        if self.environment != "testing" and self.password_hash_method != "scrypt":
            raise ConfigError("password_hash_method can only be changed when APP_ENV=testing")
        return self

    def require_secret_key(self) -> Settings:
        """Return self, or fail: web signs with SECRET_KEY; migrations do not need it."""
        if not self.secret_key and self.environment == "production":
            raise ConfigError(f"{SECRET_KEY_MISSING}; set one: {SECRET_KEY_WAY_OUT}")
        return self


def _from_env(f: Any, raw: str) -> Any:
    """Parse one variable's text as setting ``f`` declares it."""
    parse = f.metadata["parse"]
    if parse is not None:
        return parse(raw)
    kinds = {"int": (int, "an integer"), "float": (float, "a number")}
    if f.type in kinds:
        kind, called = kinds[f.type]
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(f"{f.metadata['env']} must be {called}, got {raw!r}") from None
    return raw


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``), then apply overrides by name, then check them."""
    env = os.environ if environ is None else environ
    declared = {f.name: f for f in fields(Settings)}
    unknown = set(overrides) - set(declared)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, f in declared.items():
        raw = env.get(f.metadata["env"] or "", "").strip()
        if name in overrides:
            value = overrides[name]
            values[name] = f.metadata["parse"](value) if name == "database_url" else value
        elif raw:
            values[name] = _from_env(f, raw)
    return Settings(**values).validate()
