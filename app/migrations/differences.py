"""Differences between the models and a schema, in words: what `make check` and `make status` list.

Alembic's autogenerate compares the models (``app.models.Base.metadata``)
with a database; its diff tuples print as reprs with object addresses. Each
becomes one line here, such as ``add table tags`` or ``locations.note: NOT
NULL in the models, nullable in the database``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import ClauseElement, ColumnClause, Connection
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.exc import CompileError

# How autogenerate compares, for `make revision`, `alembic check` (alembic/env.py) and make status alike:
# column types and server defaults too, so a changed default or type is a difference. Whatever else
# tells it what to compare goes here as well, for all three: an include_object that leaves out a
# table something else manages (PostGIS's spatial_ref_sys), include_schemas, a compare_type of your own.
COMPARE: dict[str, Any] = {"compare_type": True, "compare_server_default": True}
# How types and defaults are spelled: as Postgres, which the migrations run on, spells them.
POSTGRES = PGDialect()  # type: ignore[no-untyped-call]


def qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def named(item: Any) -> str:
    """Return the name of an index or constraint, as the naming convention gave it."""
    return str(item.name) if isinstance(item.name, str) else "(unnamed)"


def sql(element: Any) -> str:
    """Return a column, or an expression of an index or a default, as Postgres would be given it."""
    if isinstance(element, ColumnClause):
        return element.name
    if isinstance(element, ClauseElement):
        return str(element.compile(dialect=POSTGRES, compile_kwargs={"literal_binds": True, "include_table": False}))
    return str(element)


def on(item: Any, columns: Any) -> str:
    """Return "on table (a, lower(b))" for an index or constraint."""
    listed = ", ".join(sql(column) for column in columns)
    return f"on {qualified(item.table.schema, item.table.name)}" + (f" ({listed})" if listed else "")


def sql_type(type_: Any) -> str:
    """Return a column type as Postgres spells it: TEXT, BIGINT, TIMESTAMP WITH TIME ZONE."""
    try:
        return str(type_.compile(dialect=POSTGRES))
    except CompileError:  # a type Postgres cannot render (NullType): SQLAlchemy's name for it
        return repr(type_)


def server_default(default: Any) -> str:
    """Return a server default as a phrase: "server default now()", "server default 'red'", "no server default"."""
    value = getattr(default, "arg", default)  # what a DefaultClause wraps
    if value is None or value is False:
        return "no server default"
    if isinstance(value, str):  # server_default="red" in the models: a literal
        return "server default '{}'".format(value.replace("'", "''"))
    if isinstance(value, ClauseElement):
        return f"server default {sql(value)}"
    return f"server default {type(value).__name__.lower()}"  # an identity or a computed column


def comment(text: str | None) -> str:
    return "no comment" if text is None else "comment '{}'".format(text.replace("'", "''"))


# How each kind of column change reads, for the column's side in the models and in the other schema.
COLUMN_CHANGES: dict[str, Callable[[Any], str]] = {
    "modify_nullable": lambda nullable: "nullable" if nullable else "NOT NULL",
    "modify_type": sql_type,
    "modify_default": server_default,
    "modify_comment": comment,
}


def difference(diff: tuple[Any, ...], other: str) -> str:
    """Return one line for one of Alembic's diff tuples, as compare_metadata and `alembic check` give them.

    Each says what a revision would do to ``other``'s schema ("the
    migrations", "the database") to match the models ("add table tags"),
    or, for a column both have, how the two differ.
    """
    verb = "add" if diff[0].startswith("add_") else "drop"
    match diff:
        case ("add_table" | "remove_table", table):
            return f"{verb} table {qualified(table.schema, table.name)}"
        case ("add_column", schema, table, column):
            null = "" if column.nullable else " NOT NULL"
            default = "" if column.server_default is None else f", {server_default(column.server_default)}"
            return f"add column {qualified(schema, table)}.{column.name} {sql_type(column.type)}{null}{default}"
        case ("remove_column", schema, table, column):
            return f"drop column {qualified(schema, table)}.{column.name}"
        case ("add_index" | "remove_index", index):
            unique = "unique " if index.unique else ""
            return f"{verb} {unique}index {named(index)} {on(index, index.expressions)}"
        case ("add_fk" | "remove_fk", key):
            *referred, _ = key.elements[0].target_fullname.split(".")
            columns = ", ".join(element.target_fullname.split(".")[-1] for element in key.elements)
            where = on(key, key.column_keys)
            return f"{verb} foreign key {named(key)} {where} referencing {'.'.join(referred)} ({columns})"
        case ("add_constraint" | "remove_constraint", constraint):
            kind = re.sub(r"(?<!^)(?=[A-Z])", " ", type(constraint).__name__).lower()  # unique constraint, ...
            return f"{verb} {kind} {named(constraint)} {on(constraint, constraint.columns)}"
        case ("add_table_comment", table, existing):
            where = f"table {qualified(table.schema, table.name)}"
            return f"{where}: {comment(table.comment)} in the models, {comment(existing)} in {other}"
        case ("remove_table_comment", table):
            return f"table {qualified(table.schema, table.name)}: no comment in the models, a comment in {other}"
        case (kind, schema, table, column, dict(), migrations, models) if kind in COLUMN_CHANGES:
            said = COLUMN_CHANGES[kind]
            where = f"{qualified(schema, table)}.{column}"
            return f"{where}: {said(models)} in the models, {said(migrations)} in {other}"
    # A kind this list does not know yet: its name, and the names of what it is about.
    about = [getattr(part, "name", None) or str(part) for part in diff[1:] if part is not None]
    return f"{diff[0].replace('_', ' ')}: {', '.join(map(str, about))}"


def flattened(diffs: Iterable[Any]) -> list[tuple[Any, ...]]:
    """Return Alembic's diffs one by one: it groups a column's changes in a list."""
    return [diff for item in diffs for diff in (item if isinstance(item, list) else [item])]


def between_models_and(connection: Connection) -> list[str]:
    """Return each difference between the models and the database behind ``connection``, in words."""
    from app.models import Base

    context = MigrationContext.configure(connection, opts=COMPARE)
    return [difference(diff, "the database") for diff in flattened(compare_metadata(context, Base.metadata))]
