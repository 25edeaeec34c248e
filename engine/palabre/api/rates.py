"""The events API's two rate limits, moving windows in one `limits` storage (Redis when
REDIS_URL is set, so every process shares them; else this process's memory):

- events per key, PALABRE_API_RATE (100/second by default);
- failed authentications per client, PALABRE_API_FAILED_AUTH_RATE (20/minute): a missing,
  malformed, unknown or revoked key counts one for the client's address; a client past
  the limit is refused before its key is looked up, whatever the key, until the window
  lets it try again, so that guessing keys costs no database reads.

Either refusal is a 429 problem document with Retry-After; a Redis that cannot be reached
is StoreUnavailable, which the route answers 503. The client's address is kept
only as a keyed hash in the limiter's storage, where it expires with its window; it is
never logged nor answered. Each process remembers the hash of the addresses it saw (up to
4,096: the systems that call the API are few), to compute it once. In this process's memory
(no REDIS_URL) the lockout is not looked up while no authentication failed here within its
window: the storage then holds no failure to find.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError
from starlette.requests import Request

from palabre.api.problems import Problem
from palabre.config import SECRET, Settings
from palabre.config_checks import shown
from palabre.errors import StoreUnavailable
from palabre.outbox.schedules import storage_for

RATE, DEFAULT_RATE = "PALABRE_API_RATE", "100/second"
FAILED_AUTH_RATE, DEFAULT_FAILED_AUTH_RATE = "PALABRE_API_FAILED_AUTH_RATE", "20/minute"
T = TypeVar("T")
_PURPOSE = b"palabre api client v1"  # domain separation from the other keyed hashes
REMEMBERED_CLIENTS = 4096


@dataclass
class ApiRates:
    """The limiter and both rates, made once per app from its settings."""

    limiter: MovingWindowRateLimiter
    per_key: RateLimitItem
    failed_auth: RateLimitItem
    hasher: bytes  # keys the hash of a client's address
    clock: Callable[[], float] = time.time  # the storage's (Redis: the wall clock)
    shared: bool = False  # the storage is Redis, which other processes count in too
    _clients: dict[str, str] = field(default_factory=dict, repr=False)  # address: its hash
    _failed_at: float = field(default=-math.inf, repr=False)  # clock(): the last failure here

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiRates:
        """The limits `settings` ask for (checked at start: see `problems`)."""
        limiter = MovingWindowRateLimiter(storage_for(settings.redis_url))
        per_key = parse(settings.option(RATE) or DEFAULT_RATE)
        failed_auth = parse(settings.option(FAILED_AUTH_RATE) or DEFAULT_FAILED_AUTH_RATE)
        hasher = hmac.new(settings.secret(SECRET), _PURPOSE, hashlib.sha256).digest()
        return cls(limiter, per_key, failed_auth, hasher, shared=settings.redis_url is not None)

    def client_of(self, request: Request) -> str:
        """The keyed hash of the address the request came from (as the proxy headers
        middleware resolved it), under which its failed authentications are counted."""
        address = request.client.host if request.client else ""
        found = self._clients.get(address)
        if found is None:
            if len(self._clients) >= REMEMBERED_CLIENTS:
                self._clients.clear()  # a bound, not a working size: callers are few
            data = address.encode("utf-8", "surrogatepass")
            found = hmac.new(self.hasher, data, hashlib.sha256).hexdigest()[:32]
            self._clients[address] = found
        return found

    async def refuse_if_locked_out(self, client: str) -> None:
        """A 429 when `client` failed to authenticate too often of late."""
        if not self.shared and self.clock() - self._failed_at > self.failed_auth.get_expiry():
            return  # no failure counted here within the window, and no other process counts
        if await _asking(self.limiter.test, self.failed_auth, "api-auth", client):
            return
        wait = await self._wait(self.failed_auth, "api-auth", client)
        detail = f"too many requests from here had no valid key; wait {wait} s"
        raise too_many("auth-rate-limited", "Too many failed authentications", detail, wait)

    async def failed(self, client: str) -> None:
        """Count one failed authentication for `client`."""
        self._failed_at = self.clock()
        await _asking(self.limiter.hit, self.failed_auth, "api-auth", client)

    async def refuse_if_too_fast(self, key_name: str) -> None:
        """Count one event for the key `key_name`: a 429 when it is past its rate."""
        if await _asking(self.limiter.hit, self.per_key, "api", key_name):
            return
        wait = await self._wait(self.per_key, "api", key_name)
        detail = f"this key may send {self.per_key}; wait {wait} s"
        raise too_many("rate-limited", "Too many events", detail, wait)

    async def _wait(self, rate: RateLimitItem, *identifiers: str) -> int:
        """Whole seconds until the window lets one more through."""
        stats = await _asking(self.limiter.get_window_stats, rate, *identifiers)
        return max(1, math.ceil(stats.reset_time - self.clock()))


async def _asking(call: Callable[..., Awaitable[T]], *args: Any) -> T:
    """The limiter's answer; StoreUnavailable (a 503) when its Redis cannot be reached."""
    try:
        return await call(*args)
    except RedisError as exc:
        raise StoreUnavailable(f"the rate limits' Redis failed ({type(exc).__name__})") from exc


def too_many(kind: str, title: str, detail: str, wait: int) -> Problem:
    """429, with the seconds to wait in Retry-After."""
    return Problem(429, kind, title, detail, headers={"Retry-After": str(wait)})


def problems(settings: Settings) -> list[str]:
    """One line for each of PALABRE_API_RATE and PALABRE_API_FAILED_AUTH_RATE that is
    not a rate `limits` reads."""
    found = [_rate_problem(name, settings.option(name)) for name in (RATE, FAILED_AUTH_RATE)]
    return [line for line in found if line]


def _rate_problem(name: str, raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        readable = parse(raw).amount >= 1
    except ValueError:
        readable = False
    return None if readable else f"{name}={shown(raw)} is not a rate: write it like 100/second"
