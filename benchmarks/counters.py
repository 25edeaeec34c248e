"""Counting what a message costs in round trips, inside the benchmark's own process.

- `aiosqlite`: calls handed to an aiosqlite connection's thread (each one a trip to a
  worker thread and back, the GIL handed over twice: about 65 µs of CPU apiece on this
  project's 2-core machine, against 1.4 µs for a synchronous sqlite3 `execute`);
- `to_thread`: calls of `asyncio.to_thread` (the embedded session store's trips, and a
  QR drawing's wait), about 90 µs of CPU apiece here;
- `sql`: statements SQLAlchemy sends, on any engine (the durable stores' database), and
  those run on the driver's cursor (palabre.db.driver); the embedded session store speaks
  sqlite3 directly and is not counted here;
- `redis`: commands sent to Redis, through redis-py's client or the store's script door
  (palabre.stores.redis_calls); a Lua script call is one.

The patches wrap the library methods for as long as the `with` block lasts and put
them back after; a wrapper adds about a microsecond to each call.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite.core
import redis.asyncio.client
from sqlalchemy import Engine, event

from palabre.db.driver import DriverStatement
from palabre.stores.redis_calls import ScriptRunner


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count aiosqlite trips, `asyncio.to_thread` calls, SQL statements, Redis commands."""
    counts: Counter[str] = Counter()
    patches = [
        (aiosqlite.core.Connection, "_execute", "aiosqlite"),
        (redis.asyncio.client.Redis, "execute_command", "redis"),
        (ScriptRunner, "run", "redis"),
        (asyncio, "to_thread", "to_thread"),
    ]
    run_on_cursor = DriverStatement._execute
    originals = [getattr(owner, name) for owner, name, _ in patches]
    for (owner, name, key), original in zip(patches, originals, strict=True):
        setattr(owner, name, _counted(original, counts, key))

    def statement(*args: Any) -> None:
        counts["sql"] += 1

    def on_cursor(self: DriverStatement, *args: Any) -> Any:
        counts["sql"] += 1
        return run_on_cursor(self, *args)

    event.listen(Engine, "before_cursor_execute", statement)  # every engine
    DriverStatement._execute = on_cursor  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        DriverStatement._execute = run_on_cursor  # type: ignore[method-assign]
        event.remove(Engine, "before_cursor_execute", statement)
        for (owner, name, _), original in zip(patches, originals, strict=True):
            setattr(owner, name, original)


def _counted(method: Any, counts: Counter[str], key: str) -> Any:
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return await method(*args, **kwargs)

    return wrapper
