"""A durable, never-expiring set of keys per namespace, in the database.

It backs duplicate checks such as the UIC registry. Keys are HMAC hex digests, never
clear personal data, so the table can be kept as long as the registry must remember.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select

from palabre.db.database import Database
from palabre.db.inserts import insert_new
from palabre.db.schema import registry


class Registry:
    """Remembers which keys were registered in each namespace; `add` is atomic."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock

    async def add(self, namespace: str, key: str, *, claim: str | None = None) -> bool:
        """Register `key`; True when it is new, False when it was already there (on any
        connection, any worker).

        `claim` names the attempt (a turn's idempotency key): the same claim adding the
        same key again, as a retried turn does after a crash, still gets True.
        """
        row = {"namespace": namespace, "key": key, "created_at": self._clock(), "claim": claim}
        return await self._db.run(_add, self._db.dialect, row)

    async def contains(self, namespace: str, key: str) -> bool:
        """True when `key` was registered in `namespace`."""
        query = select(registry.c.key).where(
            registry.c.namespace == namespace, registry.c.key == key
        )
        async with self._db.read() as conn:
            return (await conn.execute(query)).first() is not None


def _add(conn: Connection, dialect: str, row: dict[str, Any]) -> bool:
    """Registry.add's transaction (one trip: Database.run)."""
    if conn.execute(insert_new(dialect, registry), row).first() is not None:
        return True
    if row["claim"] is None:
        return False
    query = select(registry.c.claim).where(
        registry.c.namespace == row["namespace"], registry.c.key == row["key"]
    )
    return conn.execute(query).scalar() == row["claim"]
