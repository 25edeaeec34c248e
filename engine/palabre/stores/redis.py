"""The production session store: Redis, shared by every worker process.

Keys are `{prefix}session:{contact}`, `{prefix}seen:{message_id}` and `{prefix}lock:{contact}`.
Every key carries a TTL: sessions and seen ids `ttl_seconds`, locks `lock_timeout`, so a
crashed worker never leaves anything behind forever. `commit` is one MULTI/EXEC transaction.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from palabre.errors import StoreError, StoreUnavailable
from palabre.stores.base import DEFAULT_TTL_SECONDS, Session
from palabre.stores.locks import ContactLocks
from palabre.stores.sqlite import dumps_session

# Compare-and-delete: only the holder's token may release the lock.
_RELEASE = """
if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end
return 0
"""

# Commit under a held lock: write the session and the seen id, then free the lock, in one
# atomic script and one round trip. KEYS: session, seen, lock. ARGV: data ("" deletes),
# ttl, lock token, "1" when there is a message id to mark.
_COMMIT_AND_RELEASE = """
if ARGV[1] == "" then redis.call("del", KEYS[1])
else redis.call("set", KEYS[1], ARGV[1], "EX", ARGV[2]) end
if ARGV[4] == "1" then redis.call("set", KEYS[2], "1", "EX", ARGV[2]) end
if redis.call("get", KEYS[3]) == ARGV[3] then redis.call("del", KEYS[3]) end
return 1
"""


class RedisSessionStore:
    """A `SessionStore` in Redis, safe for many worker processes and machines."""

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        prefix: str = "palabre:",
        lock_timeout: float = 30.0,
        lock_wait: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_wait
        self._where = _describe(url)
        self._local = ContactLocks()
        self._password = urlsplit(url).password
        # A blocking pool makes a burst of contacts wait for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=5.0,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            retry=Retry(EqualJitterBackoff(cap=0.5, base=0.05), retries=2),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._release = self._redis.register_script(_RELEASE)
        self._commit_and_release = self._redis.register_script(_COMMIT_AND_RELEASE)
        self._tokens: dict[str, str] = {}  # contact → token of the lock this process holds

    async def get(self, contact: str) -> Session | None:
        """Return the contact's session, or None when there is none or it expired."""
        async with self._errors():
            data = await self._redis.get(self._key("session", contact))
        return None if data is None else json.loads(data)

    async def commit(
        self, contact: str, session: Session | None, *, message_id: str | None = None
    ) -> None:
        """Save (None: delete) the session and mark `message_id` seen, atomically.

        Inside `locked(contact)`, the commit also frees the contact's lock in the same
        atomic step: a commit is the last thing a turn does under its lock.
        """
        data = None if session is None else dumps_session(session)
        token = self._tokens.pop(contact, None)
        if token is not None:
            keys = [
                self._key("session", contact),
                self._key("seen", message_id or ""),
                self._key("lock", contact),
            ]
            args: list[str | int] = [
                data or "",
                self.ttl_seconds,
                token,
                "1" if message_id else "0",
            ]
            async with self._errors():
                await self._commit_and_release(keys=keys, args=args)
            return
        async with self._errors(), self._redis.pipeline(transaction=True) as pipe:
            if data is None:
                pipe.delete(self._key("session", contact))
            else:
                pipe.set(self._key("session", contact), data, ex=self.ttl_seconds)
            if message_id is not None:
                pipe.set(self._key("seen", message_id), "1", ex=self.ttl_seconds)
            await pipe.execute()

    async def load(self, contact: str, message_id: str | None) -> tuple[bool, Session | None]:
        """Whether `message_id` was processed, and the contact's session: one MGET."""
        seen_key = self._key("seen", message_id) if message_id else self._key("seen", "")
        async with self._errors():
            seen, data = await self._redis.mget(seen_key, self._key("session", contact))
        session = None if data is None else json.loads(data)
        return (bool(message_id) and seen is not None), session

    async def seen(self, message_id: str) -> bool:
        """True when a commit already marked this message id, and it has not expired."""
        async with self._errors():
            return bool(await self._redis.exists(self._key("seen", message_id)))

    @asynccontextmanager
    async def locked(self, contact: str) -> AsyncIterator[None]:
        """Hold the contact's lock across every process using this Redis."""
        key = self._key("lock", contact)
        token = secrets.token_hex(16)
        async with self._local.hold(contact):
            await self._acquire(key, token)
            self._tokens[contact] = token
            try:
                yield
            finally:
                # commit() may have freed it already. Should this release be lost (outage,
                # cancellation), the lock's TTL frees it.
                if self._tokens.pop(contact, None) is not None:
                    async with self._errors():
                        await self._release(keys=[key], args=[token])

    async def _acquire(self, key: str, token: str) -> None:
        deadline = time.monotonic() + self.lock_wait
        delay = 0.005
        while True:
            async with self._errors():
                px = int(self.lock_timeout * 1000)
                if await self._redis.set(key, token, nx=True, px=px):
                    return
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"timed out after {self.lock_wait:g}s waiting for a contact lock in "
                    f"Redis at {self._where}; another worker holds it"
                )
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.05)

    async def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers."""
        async with self._errors():
            await self._redis.ping()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        """Turn redis-py errors into StoreUnavailable / StoreError, without the password."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as exc:
            cause = self._scrub(f"{type(exc).__name__}: {exc}")
            raise StoreUnavailable(f"cannot reach Redis at {self._where}: {cause}") from None
        except RedisError as exc:
            cause = self._scrub(f"{type(exc).__name__}: {exc}")
            raise StoreError(f"Redis at {self._where} failed: {cause}") from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text


def _describe(url: str) -> str:
    """Where the URL points, as host:port (or socket path), never with credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
