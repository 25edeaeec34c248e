"""A durable, never-expiring set of keys per namespace, in one SQLite file.

It backs duplicate checks such as the UIC registry. Keys are HMAC hex digests, never
clear personal data, so the file can be kept as long as the registry must remember.
"""

from __future__ import annotations

import os
import sqlite3

from palabre.stores.sqlite import SQLiteConnection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registry (
    namespace TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
"""


class SQLiteRegistry:
    """Remembers which keys were registered in each namespace; `add` is atomic."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = SQLiteConnection(path, _SCHEMA)

    async def add(self, namespace: str, key: str) -> bool:
        """Register `key`; True when it is new, False when it was already there."""
        return await self._db.run(_insert, namespace, key)

    async def contains(self, namespace: str, key: str) -> bool:
        """True when `key` was registered in `namespace`."""
        return await self._db.run(_select, namespace, key)

    async def aclose(self) -> None:
        """Close the database file."""
        await self._db.aclose()


def _insert(conn: sqlite3.Connection, namespace: str, key: str) -> bool:
    sql = "INSERT OR IGNORE INTO registry (namespace, key) VALUES (?, ?)"
    return conn.execute(sql, (namespace, key)).rowcount == 1


def _select(conn: sqlite3.Connection, namespace: str, key: str) -> bool:
    sql = "SELECT 1 FROM registry WHERE namespace = ? AND key = ?"
    return conn.execute(sql, (namespace, key)).fetchone() is not None
