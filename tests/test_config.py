"""Configuration is read from the environment in one place, with clear failures."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings, load_settings, normalize_database_url

URL = "postgres://u:p@db.example.com:5432/d"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg2://u:p@h:5432/d"),
        ("postgresql://u:p@h/d", "postgresql+psycopg2://u:p@h/d"),
        ("postgresql+psycopg2://u:p@h/d", "postgresql+psycopg2://u:p@h/d"),
        ("postgresql+psycopg://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
    ],
)
def test_heroku_scheme_and_bare_postgresql_use_psycopg2(given, expected):
    assert normalize_database_url(given) == expected


def test_missing_database_url_is_one_clear_line():
    with pytest.raises(ConfigError) as exc:
        load_settings({})
    assert "DATABASE_URL" in str(exc.value) and "\n" not in str(exc.value)


def test_database_url_must_be_postgres():
    with pytest.raises(ConfigError, match="postgres://"):
        load_settings({"DATABASE_URL": "mysql://u@h/d"})


def test_secret_key_required_in_production_only_and_by_web_only():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"DATABASE_URL": URL}).require_secret_key()
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"DATABASE_URL": URL, "APP_ENV": "production"}).require_secret_key()
    assert load_settings({"DATABASE_URL": URL, "APP_ENV": "development"}).require_secret_key().secret_key is None
    assert load_settings({"DATABASE_URL": URL, "APP_ENV": "testing"}).require_secret_key().testing
    assert load_settings({"DATABASE_URL": URL, "SECRET_KEY": "s"}).require_secret_key().environment == "production"
    assert load_settings({"DATABASE_URL": URL}).database_url, "migrations need no SECRET_KEY"


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_settings({"DATABASE_URL": URL, "APP_ENV": "staging"})


def test_bad_integer_setting_names_the_variable():
    with pytest.raises(ConfigError, match="DB_POOL_SIZE"):
        load_settings({"DATABASE_URL": URL, "APP_ENV": "testing", "DB_POOL_SIZE": "lots"})


def test_tls_required_on_heroku_only():
    local = load_settings({"DATABASE_URL": URL, "APP_ENV": "development"})
    heroku = load_settings({"DATABASE_URL": URL, "SECRET_KEY": "s", "DYNO": "web.1"})
    assert "sslmode" not in local.engine_options()["connect_args"]
    assert heroku.engine_options()["connect_args"]["sslmode"] == "require"
    assert load_settings({"DATABASE_URL": URL, "DYNO": "release.1"}).connect_args()["sslmode"] == "require"
    assert "sslmode" not in load_settings({"DATABASE_URL": URL}).connect_args()


def test_a_dynos_connections_carry_its_name_unless_the_url_names_them():
    """pg_stat_activity (and heroku pg:ps) then say which dyno holds a session."""
    args = load_settings({"DATABASE_URL": URL, "DYNO": "web.2"}).connect_args()
    assert args["fallback_application_name"] == "web.2", "libpq's fallback: an application_name in the URL wins"
    assert "fallback_application_name" not in load_settings({"DATABASE_URL": URL}).connect_args()


def test_sslmode_in_url_wins_on_heroku():
    settings = load_settings({"DATABASE_URL": URL + "?sslmode=verify-full", "SECRET_KEY": "s", "DYNO": "web.1"})
    assert "sslmode" not in settings.engine_options()["connect_args"]


def test_overrides_replace_environment_and_are_checked():
    settings = load_settings({}, database_url="postgres://u@h/d", environment="testing")
    assert settings.database_url == "postgresql+psycopg2://u@h/d"
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, database_url="postgres://u@h/d", environment="testing", colour="blue")


def test_passwords_use_werkzeugs_scrypt_outside_tests():
    settings = load_settings({"SECRET_KEY": "s"}, database_url="postgres://u@h/d")
    assert settings.password_hash_method == "scrypt"
    with pytest.raises(ConfigError, match="only be changed when APP_ENV=testing"):
        load_settings({"SECRET_KEY": "s"}, database_url="postgres://u@h/d", password_hash_method="scrypt:1024:8:1")


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("DB_POOL_SIZE", "0", "DB_POOL_SIZE must be between 1 and 100, got 0"),
        ("DB_CONNECT_TIMEOUT", "soon", "DB_CONNECT_TIMEOUT must be an integer, got 'soon'"),
        ("PROXY_HOPS", "-1", "PROXY_HOPS must be 0 or more, got -1"),
        ("TOKEN_TTL_DAYS", "0", "TOKEN_TTL_DAYS must be between 1 and 3650, got 0"),
        ("MIGRATION_LOCK_TIMEOUT", "forever", "MIGRATION_LOCK_TIMEOUT must be a duration such as 5s"),
        ("MIGRATION_LOCK_WAIT", "1.5", "MIGRATION_LOCK_WAIT must be an integer, got '1.5'"),
        ("DATABASE_URL", "postgres://u:secret@h:port/d", "DATABASE_URL is not a valid URL: its port must be a number"),
    ],
)
def test_each_bad_variable_is_one_line_naming_it(variable, value, complaint):
    with pytest.raises(ConfigError) as exc:
        load_settings({"DATABASE_URL": URL, variable: value})
    assert str(exc.value).startswith(complaint) and "\n" not in str(exc.value)


def test_every_default_passes_its_own_check():
    defaults = Settings(database_url="postgresql+psycopg2://u@h/d")
    assert defaults.validate() is defaults
    assert load_settings({"DATABASE_URL": URL, "DB_CONNECT_TIMEOUT": "2"}).connect_args()["connect_timeout"] == 2


def test_what_the_urls_query_sets_reaches_the_server_beside_the_apps_own_settings():
    """A search_path or a connect timeout in DATABASE_URL is kept; the app's own settings come after it."""
    url = URL + "?options=-c%20search_path%3Dmaps&connect_timeout=9&application_name=maps"
    args = load_settings({"DATABASE_URL": url, "DYNO": "web.1"}).engine_options()["connect_args"]
    assert args["options"] == "-c search_path=maps -c timezone=UTC -c statement_timeout=0"
    assert "connect_timeout" not in args, "the URL's 9 s stands"
    assert "application_name" not in args and args["fallback_application_name"] == "web.1", "the URL's name stands"


def test_a_password_with_url_delimiters_is_accepted_as_the_engine_reads_it():
    """Only a port that is not a number is refused, and the message quotes nothing of the URL."""
    assert load_settings({"DATABASE_URL": "postgres://app:se/cr#t?x@db:5432/app"}).database_url.endswith("@db:5432/app")
    with pytest.raises(ConfigError) as exc:
        load_settings({"DATABASE_URL": "postgres://app:s3cret@db:s3cret/app"})
    assert "s3cret" not in str(exc.value)
