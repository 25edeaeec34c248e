"""`INSERT ... ON CONFLICT` for the dialect at hand: SQLite and PostgreSQL spell it alike,
but SQLAlchemy keeps each in its own dialect module."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, literal_column
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str, table: Table) -> Any:
    """The dialect's `insert(table)`, which has `on_conflict_do_nothing/do_update`."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def insert_new(dialect: str, table: Table, **values: Any) -> Any:
    """Insert a row unless its key is taken; the result has one row when it was inserted.

    RETURNING, not rowcount: psycopg reports no rowcount for SQLAlchemy's INSERTs.
    """
    statement = insert_for(dialect, table).values(**values).on_conflict_do_nothing()
    return statement.returning(literal_column("1"))
