"""The Redis store's Lua scripts, run on connections of their own: a turn's hot path.

Every message runs two scripts (its arrival, its commit). Through redis-py's client each
one also pays a pool wait with its own timer, a retry wrapper, and a timer armed around
every socket read: about twice the script's own cost on this machine. Here a call takes
an idle connection (or opens one, up to `max_connections`), sends EVALSHA and reads the
answer, with no timer of its own. One watchdog task, waking once a `timeout / 4`, closes
any connection whose call has run longer than `timeout`: its caller gets a TimeoutError,
as a per-read timer would have given it, and the connection is never reused.

A connection that fails is closed and dropped (not one whose script raised an error:
its answer was read whole). A call that fails on a connection that
sat idle (a Redis restart leaves those dead) is tried once more on a new one, as
redis-py's retry did; the scripts are fenced by lease tokens, so a second run of one
that did reach Redis changes nothing it should not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from palabre.errors import StoreError, StoreUnavailable

Arg = str | int | bytes


@dataclass(eq=False)
class _Call:
    connection: AbstractConnection
    started: float
    timed_out: bool = False


class ScriptRunner:
    """Runs registered scripts on up to `max_connections` connections of `url`'s Redis."""

    def __init__(self, url: str, *, timeout: float, max_connections: int) -> None:
        # No socket timeout (redis-py's default is 5 s): the watchdog bounds the calls.
        self._pool = ConnectionPool.from_url(
            url, socket_timeout=None, socket_connect_timeout=timeout
        )
        self.timeout = timeout
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._calls: set[_Call] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def run(self, script: AsyncScript, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """The script's answer; redis-py's exceptions when Redis fails or is too slow."""
        async with self._slots:
            reused = bool(self._idle)
            try:
                return await self._run_once(script, keys, args)
            except (RedisConnectionError, OSError):
                if not reused:
                    raise
            return await self._run_once(script, keys, args)

    async def _run_once(self, script: AsyncScript, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        connection = self._idle.pop() if self._idle else self._pool.make_connection()
        call = _Call(connection, time.monotonic())
        self._watch(call)
        try:
            answer = await self._evalsha(connection, script, keys, args)
        except ResponseError:  # the script failed, the answer was read whole: keep it
            self._calls.discard(call)
            self._idle.append(connection)
            raise
        except BaseException:
            self._calls.discard(call)
            with suppress(Exception):
                await connection.disconnect()
            if call.timed_out:
                raise RedisTimeoutError(f"Redis gave no answer within {self.timeout:g}s") from None
            raise
        self._calls.discard(call)
        self._idle.append(connection)
        return answer

    async def _evalsha(
        self,
        connection: AbstractConnection,
        script: AsyncScript,
        keys: Sequence[Arg],
        args: Sequence[Arg],
    ) -> Any:
        command = pack(b"EVALSHA", script.sha, len(keys), *keys, *args)
        await connection.send_packed_command(command, False)
        try:
            return await connection.read_response()
        except NoScriptError:  # Redis restarted or its scripts were flushed: load, once
            await connection.send_command("SCRIPT", "LOAD", script.script)
            await connection.read_response()
            await connection.send_packed_command(command, False)
            return await connection.read_response()

    def _watch(self, call: _Call) -> None:
        self._calls.add(call)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._guard(), name="palabre-redis-watchdog")

    async def _guard(self) -> None:
        """Close the connections of calls that outlived `timeout`; end when none run."""
        while self._calls:
            await asyncio.sleep(self.timeout / 4)
            late = time.monotonic() - self.timeout
            for call in [call for call in self._calls if call.started < late]:
                call.timed_out = True
                self._calls.discard(call)
                with suppress(Exception):
                    await call.connection.disconnect()

    async def aclose(self) -> None:
        """Stop the watchdog and close every connection."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with suppress(asyncio.CancelledError):
                await self._watchdog
        for connection in self._idle:
            with suppress(Exception):
                await connection.disconnect()
        self._idle.clear()
        await self._pool.disconnect()


class RedisFailures:
    """`with failures:` around a Redis call turns redis-py's errors into StoreUnavailable
    or StoreError, saying where Redis is and never its password. One instance serves every
    call (it holds no state); a class, since it wraps every call of every message."""

    def __init__(self, where: str, password: str | None) -> None:
        self.where, self.password = where, password

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
            cause = self._scrub(f"{type(exc).__name__}: {exc}")
            raise StoreUnavailable(f"cannot reach Redis at {self.where}: {cause}") from None
        if isinstance(exc, RedisError):
            cause = self._scrub(f"{type(exc).__name__}: {exc}")
            raise StoreError(f"Redis at {self.where} failed: {cause}") from None

    def _scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text


def pack(*args: Arg) -> bytes:
    """One command in the Redis protocol (RESP): an array of bulk strings. redis-py's
    `pack_command` joins the growing buffer once per argument; this joins once."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)
