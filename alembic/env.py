"""Alembic's generic env.py, with the URL and metadata taken from the app's modules."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from app.config import database_url, migration_connect_args
from app.models import Base

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

# Shared by online runs and autogenerate: compare column types and server
# defaults too, so `alembic check` catches a changed default or type.
COMPARE = {"compare_type": True, "compare_server_default": True}


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade a:b --sql``).

    No database is needed; without DATABASE_URL the PostgreSQL dialect alone is used.
    """
    try:
        url = database_url()
    except RuntimeError:
        url = "postgresql://"
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
        **COMPARE,
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations against DATABASE_URL, one transaction per revision."""
    connectable = create_engine(
        database_url(),
        poolclass=pool.NullPool,
        connect_args=migration_connect_args(),
    )

    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
            **COMPARE,
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
