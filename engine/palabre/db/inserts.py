"""`INSERT ... ON CONFLICT` for the dialect at hand: SQLite and PostgreSQL spell it alike,
but SQLAlchemy keeps each in its own dialect module."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table, literal_column
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str, table: Table) -> Any:
    """The dialect's `insert(table)`, which has `on_conflict_do_nothing/do_update`."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


@cache
def insert_new(dialect: str, table: Table) -> Any:
    """Insert a row unless its key is taken: `conn.execute(insert_new(...), values)`; the
    result has one row when it was inserted.

    Built once per table, its values given at execution: building a statement with its
    values costs more than running it, on the paths every message takes. RETURNING, not
    rowcount: psycopg reports no rowcount for SQLAlchemy's INSERTs.
    """
    statement = insert_for(dialect, table).on_conflict_do_nothing()
    return statement.returning(literal_column("1"))
