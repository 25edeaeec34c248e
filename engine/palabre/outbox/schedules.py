"""Where the outbox's rate limits live: this process's memory, or Redis (REDIS_URL).

    MemorySchedules  senders' schedules and windows, for one process
    RedisSchedules   the same in Redis (Lua scripts, each one atomic step), shared by
                     every worker of a deployment
    PaceMemory       `limits`' memory storage for the recipients' moving windows

Times are the caller's clock, passed in (as `limits` reads its own clock on each worker).
See palabre.outbox.limits for what the schedules and windows are for.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import redis.asyncio as aioredis
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.storage.redis.redispy import RedispyBridge

KEY_PREFIX = "palabre:limits"
HELD = 30.0  # seconds an unanswered send counts at most (its worker died): > the 10 s timeout


class Schedules(Protocol):
    """Where the senders' schedules and windows live (one process, or Redis)."""

    async def reserve(
        self, key: str, now: float, interval: float, within: float
    ) -> tuple[float, bool]:
        """The next slot of `key` and whether it was taken (not when `within` is short)."""

    async def admit(self, key: str, uid: str, now: float, amount: int, window: float) -> float:
        """0 if the window has room, then taken by `uid` (unless ""); else a wait."""

    async def done(self, key: str, uid: str, until: float) -> None:
        """`uid` was answered: it counts until `until`."""


@dataclass
class _Window:
    answered: list[float] = field(default_factory=list)  # a heap: until when each counts
    unanswered: dict[str, float] = field(default_factory=dict)  # uid: until at most


class MemorySchedules:
    """The senders' schedules and windows in this process's memory."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._windows: dict[str, _Window] = {}

    async def reserve(
        self, key: str, now: float, interval: float, within: float
    ) -> tuple[float, bool]:
        at = max(self._next.get(key, now), now)
        if at - now > within:
            return at, False
        self._next[key] = at + interval
        return at, True

    async def admit(self, key: str, uid: str, now: float, amount: int, window: float) -> float:
        sends = self._windows.setdefault(key, _Window())
        while sends.answered and sends.answered[0] < now:
            heapq.heappop(sends.answered)
        for lapsed in [u for u, until in sends.unanswered.items() if until < now]:
            del sends.unanswered[lapsed]
        if len(sends.answered) + len(sends.unanswered) < amount:
            if uid:
                sends.unanswered[uid] = now + HELD + window
            return 0.0
        # No count drops before the first answered send leaves, or one answered now would.
        soonest = min([*sends.answered[:1], *sends.unanswered.values(), now + window])
        return max(0.001, soonest - now)

    async def done(self, key: str, uid: str, until: float) -> None:
        sends = self._windows.get(key)
        if sends and sends.unanswered.pop(uid, None) is not None:
            heapq.heappush(sends.answered, until)


RESERVE = """
local now, interval, within = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local at = math.max(tonumber(redis.call('GET', KEYS[1]) or ARGV[1]), now)
if at - now > within then return {0, string.format('%.17g', at)} end
local ms = math.ceil((at + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.17g', at + interval), 'PX', ms)
return {1, string.format('%.17g', at)}
"""
ADMIT = """
local now, amount, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if redis.call('ZCARD', KEYS[1]) < amount then
  if ARGV[5] ~= '' then
    local held = tonumber(ARGV[4]) + window
    redis.call('ZADD', KEYS[1], string.format('%.17g', now + held), ARGV[5])
    redis.call('EXPIRE', KEYS[1], math.ceil(held))
  end
  return '0'
end
local first = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return string.format('%.17g', math.max(0.001, math.min(first, now + window) - now))
"""


class RedisSchedules:
    """The senders' schedules (a key holding the next slot) and windows (a sorted set of
    sends, scored by until when each counts) in Redis, shared by every worker."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._reserve = client.register_script(RESERVE)
        self._admit = client.register_script(ADMIT)

    async def reserve(
        self, key: str, now: float, interval: float, within: float
    ) -> tuple[float, bool]:
        taken, at = await self._reserve([_key("next", key)], [repr(now), interval, within])
        return float(at), bool(taken)

    async def admit(self, key: str, uid: str, now: float, amount: int, window: float) -> float:
        args: list[str | float] = [repr(now), amount, window, HELD, uid]
        return float(await self._admit([_key("window", key)], args))

    async def done(self, key: str, uid: str, until: float) -> None:
        await self.client.zadd(_key("window", key), {uid: until}, xx=True)


def _key(kind: str, key: str) -> str:
    return f"{KEY_PREFIX}:{kind}:{key}"


def schedules_for(storage: Storage) -> Schedules:
    """Beside the `limits` storage: in its Redis when it has one, else in memory."""
    if isinstance(storage, RedisStorage) and isinstance(storage.bridge, RedispyBridge):
        return RedisSchedules(cast(aioredis.Redis, storage.bridge.get_connection()))
    return MemorySchedules()


class PaceMemory(MemoryStorage):
    """`limits`' memory storage, its moving windows expired key by key when a key is
    used (and all of them every SWEEP_EVERY entries). The base class sweeps every key on
    every call, with a thread hop per key: thousands of recipients made that most of a
    worker's time."""

    SWEEP_EVERY = 4096

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.windows: dict[str, tuple[float, deque[float]]] = {}  # key: (expiry, times)
        self._entries = 0

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = self.clock()
        times = self._window(key, expiry, now)
        if len(times) + amount > limit:
            return False
        times.extend([now] * amount)
        self.windows[key] = (expiry, times)
        self._entries += amount
        if self._entries >= self.SWEEP_EVERY:
            self._entries = 0
            for other, (seconds, _) in list(self.windows.items()):
                self._window(other, seconds, now)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = self.clock()
        times = self._window(key, expiry, now)
        return (times[0], len(times)) if times else (now, 0)

    async def clear(self, key: str) -> None:
        self.windows.pop(key, None)
        await super().clear(key)

    async def reset(self) -> int | None:
        self.windows.clear()
        return await super().reset()

    def _window(self, key: str, expiry: float, now: float) -> deque[float]:
        """The times of `key`'s entries within the last `expiry` seconds, oldest first."""
        _, times = self.windows.get(key) or (expiry, deque())
        while times and times[0] <= now - expiry:
            times.popleft()
        if times:
            self.windows[key] = (expiry, times)
        else:
            self.windows.pop(key, None)
        return times


def storage_for(redis_url: str | None, clock: Callable[[], float] = time.time) -> Storage:
    """Redis when REDIS_URL is set (shared by every worker), else this process's memory
    (on `clock`; on Redis, `limits` reads the wall clock)."""
    if not redis_url:
        return PaceMemory(clock)
    scheme, rest = redis_url.split("://", 1)
    uri = f"async+redis+unix://{rest}" if scheme == "unix" else f"async+{redis_url}"
    return RedisStorage(uri, implementation="redispy", key_prefix=KEY_PREFIX)
