"""The production session store: Redis, shared by every worker process.

Keys: `{prefix}session:{contact}`, `{prefix}seen:{sha256(message id)}`, and for the
contact's turn queue `{prefix}queue:{contact}`, `{prefix}alive:{token}` and
`{prefix}wake:{token}`. `contact` is the keyed contact hash, so no address reaches a key.
Every key carries a TTL, so a crashed worker never leaves anything behind forever.

Order across workers. A message asking for its contact's turn appends a token to the
contact's queue (a list) at once, so turns run in the order messages reached Palabre,
whichever worker got them. The head of the queue runs; the others block on `BLPOP` of
their own wake key, which the head pushes when it commits or leaves. Nothing polls to
decide who goes next. Each token has an `alive` key: the store's `LeaseKeeper` renews it
while the turn waits or runs; a worker that dies lets it lapse, and the next waiter to
wake (every `WAIT_SLICE` at most) drops dead heads. A commit is fenced: it writes only
while its token heads the queue and is alive, and frees the turn in the same script.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff

from palabre.errors import LockLost, StoreError
from palabre.stores import redis_scripts as scripts
from palabre.stores.base import DEFAULT_TTL_SECONDS, Session, message_key, session_ttl
from palabre.stores.lease import Lease, LeaseKeeper
from palabre.stores.redis_calls import RedisFailures, ScriptRunner
from palabre.stores.sqlite import dumps_session

# A waiter re-checks that the head of its queue is alive this often; it must stay below
# the socket timeout, since BLPOP holds the connection while it blocks.
WAIT_SLICE = 1.0
SOCKET_TIMEOUT = 5.0
QUEUE_TTL_SECONDS = 3600
# A dead worker's contacts wait at most about this long (plus WAIT_SLICE): well inside
# Twilio's 15 s, and a live turn renews its lease every third of it.
LEASE_SECONDS = 6.0  # refreshed by every arrival; far beyond any turn


class RedisSessionStore:
    """A `SessionStore` in Redis, safe for many worker processes and machines."""

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        prefix: str = "palabre:",
        lease_seconds: float = LEASE_SECONDS,
        lock_wait: float = 20.0,
        max_connections: int = 64,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix
        self.lock_wait = lock_wait
        self._lease_ms = int(lease_seconds * 1000)
        self._where = _describe(url)
        self._errors = RedisFailures(self._where, urlsplit(url).password)
        # A blocking pool makes a burst of contacts wait for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=SOCKET_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(EqualJitterBackoff(cap=0.5, base=0.05), retries=2),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        # The scripts every turn runs go through a leaner door (see redis_calls).
        self._scripts = ScriptRunner(url, timeout=SOCKET_TIMEOUT, max_connections=max_connections)
        self._arrive = self._redis.register_script(scripts.ARRIVE)
        self._head = self._redis.register_script(scripts.HEAD)
        self._leave = self._redis.register_script(scripts.LEAVE)
        self._commit_and_leave = self._redis.register_script(scripts.COMMIT_AND_LEAVE)
        self._renew_script = self._redis.register_script(scripts.RENEW)
        self._keeper = LeaseKeeper(lease_seconds, self._renew)

    async def get(self, contact: str) -> Session | None:
        """Return the contact's session, or None when there is none or it expired."""
        with self._errors:
            data = await self._redis.get(self._key("session", contact))
        return None if data is None else json.loads(data)

    async def commit(
        self,
        contact: str,
        session: Session | None,
        *,
        message_id: str | None = None,
        lease: Lease | None = None,
        ttl_seconds: int | None = None,
    ) -> None:
        """Save (None: delete) the session and mark `message_id` seen, atomically.

        With a lease, only while it still heads the contact's queue (else `LockLost`,
        nothing written), and the next waiting turn is woken in the same script.
        """
        data = "" if session is None else dumps_session(session)
        keys = [self._key("session", contact), self._seen_key(message_id or "")]
        args: list[str | int] = [
            data,
            session_ttl(self.ttl_seconds, ttl_seconds),
            self.ttl_seconds,
            "1" if message_id else "0",
        ]
        if lease is None:
            with self._errors:
                await self._scripts.run(self._commit_and_leave, [*keys, ""], [*args, "", "", ""])
            return
        keys.append(self._key("queue", contact))
        args += [lease.token, self.prefix, self._lease_ms]
        lease.ending = True
        with self._errors:
            written = await self._scripts.run(self._commit_and_leave, keys, args)
        if not written:
            raise LockLost(
                "this turn lost its contact lease before committing (a stalled worker?); "
                "nothing was written, and the provider's retry will be processed anew"
            )
        lease.released = True

    async def load(self, contact: str, message_id: str | None) -> tuple[bool, Session | None]:
        """Whether `message_id` was processed, and the contact's session: one MGET."""
        seen_key = self._seen_key(message_id or "")
        with self._errors:
            seen, data = await self._redis.mget(seen_key, self._key("session", contact))
        session = None if data is None else json.loads(data)
        return (bool(message_id) and seen is not None), session

    async def seen(self, message_id: str) -> bool:
        """True when a commit already marked this message id, and it has not expired."""
        with self._errors:
            return bool(await self._redis.exists(self._seen_key(message_id)))

    async def waiting(self, contact: str) -> int:
        """How many turns of the contact are queued, the running one included."""
        with self._errors:
            return int(await self._redis.llen(self._key("queue", contact)))

    def locked(self, contact: str, *, load: bool = False, message_id: str | None = None) -> _Turn:
        """Queue for the contact's turn, across every process using this Redis; hold it.
        With `load`, the lease carries `load(contact, message_id)`, read by the arrival's
        own script when the turn is free at once."""
        return _Turn(self, contact, load, message_id)

    async def _take(self, lease: Lease, load: bool, message_id: str | None) -> None:
        """Wait for the lease's turn (and load, with `load`)."""
        contact = lease.contact
        reads = [self._seen_key(message_id or ""), self._key("session", contact)] if load else []
        read = await self._wait_for_turn(lease, reads)
        if read is not None:
            seen, data = read
            session = None if data is None else json.loads(data)
            lease.loaded = (bool(message_id and seen), session)
        elif load:
            lease.loaded = await self.load(contact, message_id)

    async def _give_back(self, lease: Lease) -> None:
        """Stop renewing the lease; leave the queue unless its commit already did."""
        self._keeper.drop(lease)
        if not lease.released:
            with self._errors:
                await self._scripts.run(
                    self._leave, [self._key("queue", lease.contact)], self._ids(lease)
                )

    async def _wait_for_turn(self, lease: Lease, reads: list[str]) -> list[bytes | None] | None:
        """Join the contact's queue and wait to head it. `reads` (seen key, session key):
        what the arrival's script read when the turn was free at once, else None."""
        queue = self._key("queue", lease.contact)
        deadline = time.monotonic() + self.lock_wait
        with self._errors:
            arrived = await self._scripts.run(
                self._arrive, [queue, *reads], [*self._ids(lease), QUEUE_TTL_SECONDS]
            )
        head = arrived[0] if arrived else None
        while _text(head) != lease.token:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or head is None or lease.lost:
                raise StoreError(
                    f"timed out after {self.lock_wait:g}s waiting for a contact's turn in "
                    f"Redis at {self._where}; earlier messages of the contact still run"
                )
            with self._errors:
                wake = self._key("wake", lease.token)
                await self._redis.blpop([wake], min(WAIT_SLICE, remaining))
                head = await self._scripts.run(self._head, [queue], self._ids(lease))
        return list(arrived[1:]) if len(arrived) == 3 else None

    def _ids(self, lease: Lease) -> list[str | int]:
        return [lease.token, self.prefix, self._lease_ms]

    async def _renew(self, leases: list[Lease]) -> list[bool]:
        with self._errors:
            tokens = [lease.token for lease in leases]
            held = await self._scripts.run(
                self._renew_script, [], [self.prefix, self._lease_ms, *tokens]
            )
        return [bool(flag) for flag in held]

    async def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers."""
        with self._errors:
            await self._redis.ping()

    async def aclose(self) -> None:
        """Stop renewing leases and close the connection pool."""
        await self._keeper.aclose()
        await self._scripts.aclose()
        await self._redis.aclose()

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def _seen_key(self, message_id: str) -> str:
        return self._key("seen", message_key(message_id))


class _Turn:
    """`RedisSessionStore.locked`: a class, not a generator, since every message takes one."""

    __slots__ = ("lease", "load", "message_id", "store")

    def __init__(self, store: RedisSessionStore, contact: str, load: bool, message_id: str | None):
        self.store, self.lease = store, Lease(contact)
        self.load, self.message_id = load, message_id

    async def __aenter__(self) -> Lease:
        self.store._keeper.keep(self.lease)
        try:
            await self.store._take(self.lease, self.load, self.message_id)
        except BaseException:
            await self.store._give_back(self.lease)
            raise
        return self.lease

    async def __aexit__(self, *exc: object) -> None:
        await self.store._give_back(self.lease)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _describe(url: str) -> str:
    """Where the URL points, as host:port (or socket path), never with credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
