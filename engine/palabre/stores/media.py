"""Media that Palabre serves itself (QR codes...), behind unguessable, expiring URLs.

Each item lives in SQLite with an expiry. Its URL carries a token: the item's random id
and the expiry time, signed with HMAC-SHA256 under the deployment secret. Knowing what
an image shows (someone's code) does not reveal its URL; an altered or expired token is
refused; expired items are purged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from palabre.stores.sqlite import SQLiteConnection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY, content_type TEXT NOT NULL, data BLOB NOT NULL,
    expires_at REAL NOT NULL);
"""
DEFAULT_TTL = 24 * 3600


@dataclass(frozen=True)
class StoredMedia:
    """One item: its bytes, type and expiry (a Unix time)."""

    id: str
    content_type: str
    data: bytes
    expires_at: float


class MediaStore:
    """Stores media bytes and signs the tokens of their URLs."""

    def __init__(
        self, path: str | os.PathLike[str], secret: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = SQLiteConnection(path, _SCHEMA)
        self._key = hashlib.sha256(b"palabre-media\x00" + secret).digest()
        self._clock = clock

    async def put(self, data: bytes, content_type: str, ttl: int = DEFAULT_TTL) -> str:
        """Store `data` for `ttl` seconds; returns its id."""
        media_id = secrets.token_urlsafe(16)
        row = (media_id, content_type, data, self._clock() + ttl)
        await self._db.run(lambda c: c.execute("INSERT INTO media VALUES (?, ?, ?, ?)", row))
        return media_id

    async def get(self, media_id: str) -> StoredMedia | None:
        """The item, or None when it is unknown or expired."""
        row = await self._db.run(_select, media_id, self._clock())
        return StoredMedia(*row) if row else None

    async def purge(self) -> int:
        """Delete expired items; returns how many."""
        now = self._clock()
        return await self._db.run(
            lambda c: c.execute("DELETE FROM media WHERE expires_at < ?", (now,)).rowcount
        )

    async def token(self, media_id: str) -> str | None:
        """A URL token for the item, valid until the item expires (None when unknown)."""
        item = await self.get(media_id)
        return self.sign(media_id, int(item.expires_at)) if item else None

    def sign(self, media_id: str, expires_at: int) -> str:
        payload = f"{media_id}.{expires_at}"
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> str | None:
        """The media id a token names, or None when it is altered, malformed or expired."""
        media_id, _, rest = token.partition(".")
        expires, _, mac = rest.partition(".")
        payload = f"{media_id}.{expires}"
        if not (media_id and expires.isdigit() and mac):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        return media_id if int(expires) >= self._clock() else None

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def aclose(self) -> None:
        await self._db.aclose()


def _select(conn: sqlite3.Connection, media_id: str, now: float) -> tuple | None:
    return conn.execute(
        "SELECT id, content_type, data, expires_at FROM media WHERE id = ? AND expires_at >= ?",
        (media_id, now),
    ).fetchone()
