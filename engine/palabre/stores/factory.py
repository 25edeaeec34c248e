"""Choose the session store from the settings: Redis when configured, else SQLite."""

from __future__ import annotations

from pathlib import Path

from palabre.stores.base import SessionStore
from palabre.stores.redis import RedisSessionStore
from palabre.stores.sqlite import SQLiteSessionStore


def open_store(*, redis_url: str | None, data_dir: Path, ttl_seconds: int) -> SessionStore:
    """Open Redis at `redis_url` when given, else the embedded `data_dir/sessions.db`."""
    if redis_url:
        return RedisSessionStore(redis_url, ttl_seconds=ttl_seconds)
    return SQLiteSessionStore(data_dir / "sessions.db", ttl_seconds=ttl_seconds)
