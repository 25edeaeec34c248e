"""API keys for the events API: `plb_` and 43 random URL-safe characters (256 bits).

A key is shown once, when it is made; the database keeps only its keyed hash (HMAC-SHA256
under a key derived from PALABRE_SECRET), by which a request's key is found in one
indexed read. A slow password hash (argon2) would protect guessable secrets; these are
random and long, so a keyed hash is as safe and costs microseconds on every request
(GitHub and GitLab keep their tokens the same way). Without PALABRE_SECRET, a stolen
database alone cannot test a guessed key.

A key found in force is remembered by each process for REMEMBER_SECONDS (10 s), by a
keyed BLAKE2b hash of it (cheaper than the stored HMAC; no key is kept in clear), so that
a busy caller does not cost a database read per event: a revoked key is refused by every
process within those 10 seconds (at once by the process that revoked it). Unknown and
revoked keys are never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update

from palabre.db.database import Database
from palabre.db.driver import DriverStatement
from palabre.db.schema import api_keys
from palabre.errors import ConfigError

PREFIX = "plb_"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # who uses it: smartqueue, fleet-alerts
CLI_KEY = "cli"  # `palabre notify` sends under this name
RESERVED = (CLI_KEY,)
_PURPOSE = b"palabre api key v1"  # domain separation from the other keyed hashes
MAX_KEY_CHARS = 100
REMEMBER_SECONDS = 10.0  # how late a revocation may take effect in another process
REMEMBERED_KEYS = 1024  # far more keys than a deployment has: a bound, not a working size


@dataclass(frozen=True)
class ApiKey:
    """A key as `palabre apikey list` shows it (never the key itself)."""

    name: str
    created_at: float
    revoked_at: float | None


def key_hasher(secret: bytes) -> bytes:
    """The key that API keys are hashed with, derived from the deployment secret."""
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def digest_of(hasher: bytes, key: str) -> str:
    """The keyed hash of an API key, as stored."""
    return hmac.new(hasher, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


class ApiKeys:
    """The API keys on the database."""

    def __init__(
        self, database: Database, hasher: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self.database, self.hasher, self.clock = database, hasher, clock
        self._found: OrderedDict[bytes, tuple[str, float]] = OrderedDict()  # seen: name, until

    async def create(self, name: str) -> str:
        """A new key named `name`, returned once; ConfigError when the name is taken,
        reserved or malformed."""
        if not NAME.fullmatch(name) or name in RESERVED:
            raise ConfigError(
                f"a key's name is 1 to 40 lower-case letters, digits, '-' or '_', and not "
                f"{', '.join(RESERVED)}: like smartqueue or fleet-alerts"
            )
        key = PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "digest": digest_of(self.hasher, key), "created_at": self.clock()}
        async with self.database.write() as conn:
            taken = await conn.execute(select(api_keys.c.name).where(api_keys.c.name == name))
            if taken.first() is not None:
                raise ConfigError(f"an API key named '{name}' exists (revoked or not): pick a name")
            await conn.execute(insert(api_keys).values(row))
        return key

    async def revoke(self, name: str) -> bool:
        """Revoke the key `name`; False when there is no such key in force."""
        live = (api_keys.c.name == name) & api_keys.c.revoked_at.is_(None)
        async with self.database.write() as conn:
            done = await conn.execute(update(api_keys).where(live).values(revoked_at=self.clock()))
        for seen, (owner, _) in list(self._found.items()):
            if owner == name:  # this process stops accepting it now, not in 10 s
                del self._found[seen]
        return bool(done.rowcount)

    async def owner(self, key: str) -> str | None:
        """The name of the key in force that `key` is, or None (a key in force is
        remembered for REMEMBER_SECONDS: a revocation may take that long to be seen)."""
        if not key.startswith(PREFIX) or len(key) > MAX_KEY_CHARS:
            return None
        data = key.encode("utf-8", "surrogatepass")
        # Remembered by another keyed hash, a few times cheaper than the stored one.
        seen = hashlib.blake2b(data, key=self.hasher, digest_size=16).digest()
        remembered = self._found.get(seen)
        if remembered is not None and remembered[1] > self.clock():
            return remembered[0]
        row = await self.database.run(_IN_FORCE.first, {"b_digest": digest_of(self.hasher, key)})
        name = None if row is None else str(row[0])
        self._remember(seen, name)
        return name

    def _remember(self, seen: bytes, name: str | None) -> None:
        """Keep a key found in force for a while; forget one that is no longer."""
        self._found.pop(seen, None)
        if name is None:
            return
        self._found[seen] = (name, self.clock() + REMEMBER_SECONDS)
        if len(self._found) > REMEMBERED_KEYS:
            self._found.popitem(last=False)  # the one found longest ago

    async def all(self) -> list[ApiKey]:
        """Every key, in force or revoked, by name."""
        query = select(api_keys.c.name, api_keys.c.created_at, api_keys.c.revoked_at)
        async with self.database.read() as conn:
            rows = (await conn.execute(query.order_by(api_keys.c.name))).all()
        return [ApiKey(*row) for row in rows]


# Run once per key and process every REMEMBER_SECONDS: one trip, on the driver's cursor.
_IN_FORCE = DriverStatement(
    select(api_keys.c.name).where(
        api_keys.c.digest == bindparam("b_digest"), api_keys.c.revoked_at.is_(None)
    )
)
