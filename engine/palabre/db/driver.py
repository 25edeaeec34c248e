"""Statements run on the database driver's own cursor, for the few every message runs.

SQLAlchemy's execution of a statement (its compiled-cache lookup, parameter processing,
execution context, result wrapper) costs several times what SQLite takes to run a
one-row INSERT or UPDATE. A `DriverStatement` is a Core statement compiled once per
dialect and run with the DBAPI cursor of the transaction the SQLAlchemy connection
already holds, so it commits or rolls back with everything else in it.

Only for statements whose columns need no type processing (text, integers, floats), and
with no expanding `IN` lists. An INSERT is compiled for the columns of the first values
it runs with: give it the same columns every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Insert

# The SQL, the positional order of its parameters (None: by name), the values it holds.
Compiled = tuple[str, tuple[str, ...] | None, Mapping[str, Any]]


class DriverStatement:
    """`statement`, compiled once per dialect (and an INSERT for its first columns)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], Compiled] = {}  # by dialect and paramstyle

    def rowcount(self, conn: Connection, values: Mapping[str, Any]) -> int:
        """Run with `values` in `conn`'s transaction; the rows it changed."""
        cursor = self._execute(conn, values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Run with `values` in `conn`'s transaction; its first row (RETURNING), or None.
        The cursor is closed: SQLite cannot commit while a statement's rows are unread."""
        cursor = self._execute(conn, values)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    def _execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        sql, order, fixed = self._for(conn.dialect, values)
        params = {**fixed, **values}  # the values the statement itself holds, then these
        cursor = conn.connection.cursor()
        cursor.execute(sql, params if order is None else tuple(params[name] for name in order))
        return cursor

    def _for(self, dialect: Dialect, values: Mapping[str, Any]) -> Compiled:
        which = (dialect.name, dialect.paramstyle)
        found = self._compiled.get(which)
        if found is None:
            columns = list(values) if isinstance(self.statement, Insert) else None
            compiled = cast(
                SQLCompiler, self.statement.compile(dialect=dialect, column_keys=columns)
            )
            if compiled.literal_execute_params or compiled.post_compile_params:
                raise ValueError(f"an IN list cannot run on the driver's cursor: {compiled}")
            order = tuple(compiled.positiontup or ()) if dialect.positional else None
            found = self._compiled[which] = (str(compiled), order, compiled.params)
        return found
