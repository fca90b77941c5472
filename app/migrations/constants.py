"""What the migration package shares with the bin/ scripts, which run before the virtualenv exists.

Standard library only (so is every package above this module): bin/localdb
imports it with the host's python3.
"""

# pg_advisory_lock takes a bigint; any constant works as long as every
# migrator of this database uses the same one.
LOCK_KEY = 7_243_190_441_268_553_001

# What Postgres says when it has as many connections as it takes:
# max_connections ("too many clients already"), or a role's or database's
# limit, as on Heroku's plans ("too many connections for role ...").
FULL = ("too many clients already", "too many connections for")
FULL_WAY_OUT = (
    "the database takes no more connections (its limit, as the Heroku plan's; each web thread keeps one, "
    "and gives it back after DB_POOL_IDLE seconds unused: dynos x WEB_CONCURRENCY x GUNICORN_THREADS; fewer dynos "
    "give theirs back at once, make scale web=1 or heroku ps:scale web=1; or a larger plan, DB_MAX_CONNECTIONS here)"
)


def is_full(said: str) -> bool:
    """Return whether the database's answer ``said`` is that it takes no more connections."""
    return any(words in said for words in FULL)


# What Postgres says when only a superuser may do it: the dynos' role owns
# the database and is no superuser, as Heroku's credential is not one.
SUPERUSER_ONLY = ("must be superuser", "is a system trigger", "permission denied to ")
SUPERUSER_ONLY_NOTE = (
    "the app's role owns the database but is no superuser, as on Heroku, where this fails the same way; "
    "do it another way (a trigger of your own disabled by name, not ALL; a role made with heroku pg:credentials)"
)


def is_superuser_only(said: str) -> bool:
    """Return whether the database's answer ``said`` is that only a superuser may do that."""
    return any(words in said for words in SUPERUSER_ONLY)
