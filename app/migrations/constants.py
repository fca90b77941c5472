"""What the migration package shares with the bin/ scripts, which run before the virtualenv exists.

Standard library only (so is every package above this module): bin/localdb
imports it with the host's python3.
"""

import re

# pg_advisory_lock takes a bigint; any constant works as long as every
# migrator of this database uses the same one.
LOCK_KEY = 7_243_190_441_268_553_001

# What Postgres says when it has as many connections as it takes: a role's
# or database's limit, as on Heroku's Essential plans and here ("too many
# connections for role ..."), or max_connections, as on its larger plans
# ("remaining connection slots are reserved ...", "too many clients already").
FULL = ("too many clients already", "too many connections for", "remaining connection slots are reserved")
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
# An extension Postgres does not trust needs a superuser as well, but Heroku
# Postgres lets its credential create some of those, so there it may pass.
UNTRUSTED_EXTENSION = re.compile(r'permission denied to create extension "([^"]+)"')
UNTRUSTED_EXTENSION_NOTE = (
    "the app's role owns the database but is no superuser, so Postgres lets it create only the extensions it "
    "trusts; Heroku Postgres allows some others (Dev Center: Extensions, PostGIS, and Full Text Search "
    "Dictionaries on Heroku Postgres). If {name} is one, create it once as the superuser in the local "
    "database: docker compose exec db psql -U app app -c 'CREATE EXTENSION \"{name}\"' (then the revision's "
    "CREATE EXTENSION IF NOT EXISTS passes; DROP it the same way before a downgrade past it); "
    "if not, it fails on Heroku too"
)


def superuser_only_note(said: str) -> str | None:
    """Return why the database's answer ``said`` refuses the app's role and what to do, or None if it does not.

    Only a superuser may do it: on Heroku too, unless it creates an extension
    Heroku allows, which the note then says how to create locally.
    """
    extension = UNTRUSTED_EXTENSION.search(said)
    if extension:
        return UNTRUSTED_EXTENSION_NOTE.format(name=extension.group(1))
    return SUPERUSER_ONLY_NOTE if any(words in said for words in SUPERUSER_ONLY) else None
