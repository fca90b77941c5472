"""Alembic's generic env.py, with the URL and metadata from the app, and app/migrations/safety.py's safety."""

from contextlib import suppress
from logging.config import fileConfig

from alembic import context
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError, OperationalError

from app.config import ConfigError, load_settings
from app.migrations import history, safety
from app.migrations.differences import COMPARE
from app.models import Base

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def refuse_empty_revision(
    migration_context: MigrationContext, revision: object, directives: list[MigrationScript]
) -> None:
    """Stop `revision --autogenerate` from writing a file with nothing in it, unless asked (-x empty=1)."""
    if not getattr(config.cmd_opts, "autogenerate", False):
        return
    if context.get_x_argument(as_dictionary=True).get("empty"):
        return
    upgrade_ops = directives[0].upgrade_ops
    if upgrade_ops is not None and upgrade_ops.is_empty():
        raise CommandError(
            "autogenerate found no difference between the models and the database, so no revision was "
            "written. It sees the models app/models.py defines or imports (a model in a module of its own needs "
            "an import there), and compares tables, columns, types, defaults, indexes and foreign keys, not CHECK "
            'constraints or enum values; for those, or a data migration, ask for an empty one: make revision m="..." '
            "empty=1"
        )


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade a:b --sql``).

    No database is needed; without DATABASE_URL the PostgreSQL dialect alone is used.
    """
    try:
        settings = load_settings()
    except ConfigError:  # no DATABASE_URL: the PostgreSQL dialect is all SQL generation needs
        settings = load_settings(database_url="postgresql://")
    context.configure(
        url=settings.database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
        **COMPARE,  # what autogenerate compares and leaves out, make status included: app/migrations/differences.py
    )
    for statement in safety.session_settings_sql(settings):
        context.execute(statement)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations against DATABASE_URL: locked, time-bounded, one transaction per revision."""
    try:
        # Alembic run in-process may name its database (make check's scratch one) rather than DATABASE_URL.
        given = config.attributes.get("database_url")
        settings = load_settings(database_url=given) if given else load_settings()
    except ConfigError as exc:  # one line (alembic's FAILED: ...), not a traceback
        raise CommandError(str(exc)) from None
    connectable = safety.migration_engine(settings)
    try:
        connection = connectable.connect()
    except OperationalError as exc:  # a wrong password, a full or closed database: one line, as make status says it
        raise CommandError(f"cannot reach the database: {safety.db_error_reason(exc)}") from None

    with connection:
        safety.prepare(connection, settings)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
            process_revision_directives=refuse_empty_revision,
            on_version_apply=history.note_applied,  # each revision's parents, as it is applied
            **COMPARE,
        )
        tracker = safety.StepTracker()
        tracker.watch(context.get_context())
        requested = getattr(config.cmd_opts, "revision", None)
        # upgrade or downgrade, as the alembic command was asked (in-process callers give no command: upgrade).
        direction = getattr(getattr(config.cmd_opts, "cmd", (None,))[0], "__name__", "upgrade")
        started = history.current_revision(context.get_context())
        # A rebase left revisions below the database's unrun: an upgrade would not run them, and a
        # downgrade would stop at one of them as if it had run. (stamp, the way to say otherwise, is let be.)
        rewired = (
            history.rewired(connection, started, context.script) if direction in ("upgrade", "downgrade") else None
        )
        if rewired:
            safety.release(connection)
            raise CommandError(history.rewired_message(rewired, started, settings.local))
        if direction == "upgrade" and requested == "head" and started == history.head_revision():
            print(f"nothing to apply: the database is at this code's head ({started})")
        if direction == "downgrade" and requested and requested.startswith("-") and started and "," in started:
            safety.release(connection)
            raise CommandError(history.relative_downgrade_at_heads(requested, started.split(",")))
        if direction == "downgrade" and requested:
            heads = tuple(started.split(",")) if started else ()
            on_the_way = history.irreversible_on_the_way(context.script, requested, heads)
            if on_the_way:  # refuse before reverting anything, rather than stop halfway
                safety.release(connection)
                raise CommandError(safety.irreversible_message(on_the_way, requested, started, settings.local))
        try:
            with tracker, context.begin_transaction():
                context.run_migrations()
        except DBAPIError as exc:
            try:
                connection.rollback()
                current = history.current_revision(context.get_context())
            except DBAPIError:  # the connection itself is gone: the server restarted, or ended the session
                raise CommandError(safety.lost_connection_message(exc, tracker.step)) from exc
            kept = tracker.kept(connection, settings.local, exc)
            holders = safety.lock_holders(connection, exc)
            raise CommandError(
                safety.failure_message(
                    exc, tracker.step, settings, current, kept=kept, started=started, holders=holders
                )
            ) from exc
        except CommandError as exc:
            # "Can't locate revision ...": say which, and the ways out, when it is the database's.
            current = history.current_revision(context.get_context())
            if not history.is_known(current):
                line = history.lineage_verdict(connection, current, context.script)
                raise CommandError(
                    history.unknown_revision_message(current, history.head_revision(), settings.local, *line)
                ) from exc
            explained = history.explain_command_error(str(exc), requested, current, direction)
            if explained is None:
                raise
            words, nothing_to_do = explained
            if not nothing_to_do:
                raise CommandError(words) from exc
            print(words)
        except (Exception, KeyboardInterrupt) as exc:  # an error in a revision's Python, or Ctrl-C
            if tracker.step is None:  # not in a revision: nothing of one to roll back or to blame
                raise
            connection.rollback()
            current = history.current_revision(context.get_context())
            kept = tracker.kept(connection, settings.local, exc)
            raise CommandError(
                safety.code_failure_message(
                    exc, tracker.step, current, kept=kept, started=started, local=settings.local
                )
            ) from exc
        else:
            now = history.current_revision(context.get_context())
            if config.cmd_opts is not None and now != started:  # the alembic command: say where it ended
                print(f"done: the database is at {now or 'base (empty)'} (it was at {started or 'base (empty)'})")
            # So that a later run can tell a rollback from another line's revisions (history.record_lineage).
            unkept = history.record_lineage(connection, context.script)
            if unkept:
                print(f"note: the revisions' lineage was not kept with the database ({unkept})")
        finally:
            with suppress(DBAPIError):  # a lost connection took the lock with it
                safety.release(connection)


history.checked(context.script)  # a revision file gone: one line, not Alembic's KeyError traceback
if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
