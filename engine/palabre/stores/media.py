"""Media that Palabre serves itself (QR codes...), behind unguessable, expiring URLs.

Each item lives in the database with an expiry, so any worker serves what another made.
Its URL carries a token: the item's random id and the expiry time, signed with
HMAC-SHA256 under the deployment secret. Knowing what an image shows (someone's code)
does not reveal its URL; an altered or expired token is refused; expired items are purged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from palabre.db.batches import group_commit
from palabre.db.database import Database
from palabre.db.schema import media

DEFAULT_TTL = 24 * 3600
# Expiries of the items this process stored lately: the turn that draws a QR code asks for
# its URL at once, and reading the row back for its expiry cost a database trip per image.
RECENT = 1024
_INSERT = insert(media)  # built once; its values given at each run


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
        self, database: Database, secret: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = database
        self._key = hashlib.sha256(b"palabre-media\x00" + secret).digest()
        self._clock = clock
        self._recent: OrderedDict[str, float] = OrderedDict()

    async def put(self, data: bytes, content_type: str, ttl: int = DEFAULT_TTL) -> str:
        """Store `data` for `ttl` seconds; returns its id."""
        media_id = secrets.token_urlsafe(16)
        row = {"id": media_id, "content_type": content_type, "data": data}
        # In the group commit the outbox shares: the turn's rows commit in the same trip.
        expires_at = self._clock() + ttl
        await group_commit(self._db).execute(_INSERT, {**row, "expires_at": expires_at})
        self._recent[media_id] = expires_at
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return media_id

    async def get(self, media_id: str) -> StoredMedia | None:
        """The item, or None when it is unknown or expired."""
        query = select(media.c.id, media.c.content_type, media.c.data, media.c.expires_at)
        query = query.where(media.c.id == media_id, media.c.expires_at >= self._clock())
        async with self._db.read() as conn:
            found = (await conn.execute(query)).first()
        return StoredMedia(found[0], found[1], bytes(found[2]), found[3]) if found else None

    async def purge(self) -> int:
        """Delete expired items; returns how many."""
        async with self._db.write() as conn:
            done = await conn.execute(delete(media).where(media.c.expires_at < self._clock()))
        return done.rowcount

    async def token(self, media_id: str) -> str | None:
        """A URL token for the item, valid until the item expires (None when unknown)."""
        expires_at = self._recent.get(media_id)
        if expires_at is None:  # stored by another worker, or long ago
            query = select(media.c.expires_at).where(media.c.id == media_id)
            async with self._db.read() as conn:
                expires_at = (await conn.execute(query)).scalar_one_or_none()
        if expires_at is None or expires_at < self._clock():
            return None
        return self.sign(media_id, int(expires_at))

    def sign(self, media_id: str, expires_at: int) -> str:
        """The token naming `media_id` until `expires_at`."""
        payload = f"{media_id}.{expires_at}"
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> str | None:
        """The media id a token names, or None when it is altered, malformed or expired."""
        media_id, _, rest = token.partition(".")
        expires, _, mac = rest.partition(".")
        payload = f"{media_id}.{expires}"
        if not (media_id and expires.isascii() and expires.isdigit() and mac.isascii()):
            return None
        if len(expires) > 12 or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        return media_id if int(expires) >= self._clock() else None

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
