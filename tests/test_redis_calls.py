"""The Redis store's script door (palabre.stores.redis_calls), against a real Redis."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from palabre.stores.redis_calls import ScriptRunner

pytestmark = pytest.mark.anyio

ECHO = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture
async def runner(redis_url: str) -> AsyncIterator[ScriptRunner]:
    opened = ScriptRunner(redis_url, timeout=5, max_connections=4)
    yield opened
    await opened.aclose()


@pytest.fixture
def echo(client: aioredis.Redis) -> AsyncScript:
    return client.register_script(ECHO)


async def connections(client: aioredis.Redis) -> set[str]:
    """The ids of the connections the Redis server has now (the server is shared: other
    tests' connections may be there, so a test compares before and after)."""
    return {entry["id"] for entry in await client.client_list()}


async def test_a_script_answers_and_its_connection_is_kept_for_the_next_call(
    runner: ScriptRunner, echo: AsyncScript, client: aioredis.Redis
) -> None:
    before = await connections(client)
    assert await runner.run(echo, ["k"], ["v"]) == [b"k", b"v"]
    assert await runner.run(echo, ["k2"], [7]) == [b"k2", b"7"]
    opened = await connections(client) - before
    assert len(opened) == 1, f"the runner opened one connection for both calls: {opened}"


async def test_scripts_flushed_from_redis_are_loaded_again(
    runner: ScriptRunner, echo: AsyncScript, client: aioredis.Redis
) -> None:
    await runner.run(echo, ["k"], ["v"])
    await client.script_flush()
    assert await runner.run(echo, ["k"], ["again"]) == [b"k", b"again"]


async def test_a_connection_killed_while_idle_is_replaced_on_the_next_call(
    runner: ScriptRunner, echo: AsyncScript, client: aioredis.Redis
) -> None:
    before = await connections(client)
    await runner.run(echo, ["k"], ["v"])
    (idle,) = await connections(client) - before  # the runner's one connection
    killed = await client.client_kill_filter(_id=idle)
    assert killed == 1, "the runner's idle connection is the one killed"
    assert await runner.run(echo, ["k"], ["after"]) == [b"k", b"after"]


async def test_a_script_error_is_raised_and_the_connection_stays_usable(
    redis_url: str, client: aioredis.Redis
) -> None:
    runner = ScriptRunner(redis_url, timeout=5, max_connections=1)
    broken = client.register_script("return redis.call('NOSUCHCOMMAND')")
    with pytest.raises(ResponseError):
        await runner.run(broken, [], [])
    before = await connections(client)
    assert await runner.run(client.register_script(ECHO), ["k"], ["v"]) == [b"k", b"v"]
    after = await connections(client)
    assert after == before, "the same connection answered: it was kept, not reopened"
    await runner.aclose()


async def test_a_redis_that_never_answers_times_out_instead_of_hanging() -> None:
    """A server that accepts and reads but never replies: only the watchdog can end the call."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    async def accept() -> None:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        while True:
            connection, _ = await loop.sock_accept(listener)
            held.append(connection)

    acceptor = asyncio.create_task(accept())
    runner = ScriptRunner(f"redis://127.0.0.1:{port}/0", timeout=0.2, max_connections=1)
    silent = aioredis.Redis().register_script(ECHO)  # only its sha and text are used
    try:
        # The outer bound only turns a hang (no watchdog) into a failure, far past 0.2 s.
        async with asyncio.timeout(30):
            with pytest.raises(RedisTimeoutError, match=r"no answer within 0\.2s"):
                await runner.run(silent, ["k"], ["v"])
    finally:
        acceptor.cancel()
        await runner.aclose()
        for connection in held:
            connection.close()
        listener.close()


def test_commands_are_packed_as_redis_py_packs_them():
    """A bounded random loop against redis-py's own packer: text in any script, bytes,
    integers of either sign, empty arguments."""
    from random import Random

    from redis.asyncio.connection import Connection

    from palabre.stores.redis_calls import pack

    rng, reference = Random(5), Connection()
    pieces = ["", "k", "é", "توقف", "a b", "\r\n", "x" * 7000]
    for _ in range(300):
        args = [rng.choice([*pieces, rng.randint(-(10**12), 10**12), bytes([rng.randrange(256)])])]
        args += [rng.choice(pieces) for _ in range(rng.randint(0, 5))]
        command = [b"EVALSHA", *args]
        assert pack(*command) == b"".join(reference.pack_command(*command)), command
