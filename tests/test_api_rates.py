"""The events API's failed-authentication limit on its own, on a clock moved by hand: a
client's lockout lifts as its failures leave the window, other clients are not touched,
addresses are kept only as keyed hashes, and the setting is checked at start. Over real
HTTP, see tests/test_events_api.py."""

from __future__ import annotations

import asyncio

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from tests.db_fixtures import Clock

from palabre import builtins
from palabre.api.problems import Problem
from palabre.api.rates import ApiRates
from palabre.config import SECRET, Settings
from palabre.errors import StoreUnavailable
from palabre.outbox.schedules import PaceMemory

GUESSER, NEIGHBOUR = "203.0.113.7", "203.0.113.8"


def test_a_lockout_lifts_as_its_failures_leave_the_window():
    clock = Clock()
    limiter = MovingWindowRateLimiter(PaceMemory(clock))
    rates = ApiRates(limiter, parse("100/second"), parse("2/minute"), b"h" * 32, clock)
    guesser, neighbour = (rates.client_of(request_from(a)) for a in (GUESSER, NEIGHBOUR))
    assert guesser != neighbour and GUESSER not in guesser, "one keyed hash per address"
    assert rates.client_of(request_from(GUESSER)) == guesser, "the same for the same address"

    async def locked_out(client: str) -> int | None:
        """Retry-After, when `client` is refused."""
        try:
            await rates.refuse_if_locked_out(client)
        except Problem as refused:
            return int(refused.headers["Retry-After"])
        return None

    async def run() -> list[int | None]:
        found = [await locked_out(guesser)]
        await rates.failed(guesser)
        clock.now += 30
        await rates.failed(guesser)
        found += [await locked_out(guesser), await locked_out(neighbour)]
        clock.now += 31  # the first failure leaves the window: one more try
        found.append(await locked_out(guesser))
        await rates.failed(guesser)
        found.append(await locked_out(guesser))
        return found

    assert asyncio.run(run()) == [None, 30, None, None, 29], "as each failure leaves the window"


def request_from(address: str) -> Request:
    return Request({"type": "http", "method": "POST", "headers": [], "client": (address, 5)})


def test_the_failed_authentication_rate_is_checked_at_start():
    (line,) = builtins.check_settings(Settings(options={"PALABRE_API_FAILED_AUTH_RATE": "lots"}))
    assert line.startswith("PALABRE_API_FAILED_AUTH_RATE=") and "is not a rate" in line, line
    readable = Settings(options={"PALABRE_API_FAILED_AUTH_RATE": "5/hour"})
    assert builtins.check_settings(readable) == [], "a rate limits reads is accepted"


def test_a_redis_that_cannot_be_reached_is_store_unavailable_not_a_crash(free_tcp_port):
    # Nothing listens on the port: the real Redis client fails to connect.
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_tcp_port}", secrets={SECRET: "s" * 32})
    rates = ApiRates.from_settings(settings)

    async def run() -> None:
        await rates.refuse_if_too_fast("smartqueue")

    with pytest.raises(StoreUnavailable, match="rate limits' Redis failed"):
        asyncio.run(run())


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "shared"])
def test_the_lockout_is_looked_up_only_where_a_failure_may_be_counted(shared):
    """In this process's memory only this process counts failures: with none here within
    the window, there is none to find, and the storage is not asked. A shared storage
    (Redis) is always asked: other processes count there too."""
    clock = Clock()
    limiter = MovingWindowRateLimiter(PaceMemory(clock))
    rates = ApiRates(limiter, parse("100/second"), parse("2/minute"), b"h" * 32, clock, shared)
    asked: list[str] = []
    test = limiter.test

    async def counted_test(*args: object) -> bool:
        asked.append(str(args[-1]))
        return await test(*args)  # type: ignore[arg-type]

    limiter.test = counted_test  # type: ignore[method-assign]
    client = rates.client_of(request_from(GUESSER))

    async def looked_up_after(step: str) -> int:
        if step == "fail":
            await rates.failed(client)
        elif step == "wait":
            clock.now += 61
        await rates.refuse_if_locked_out(client)
        return len(asked)

    steps = ["none", "fail", "none", "wait"]
    found = [asyncio.run(looked_up_after(step)) for step in steps]
    expected = [1, 2, 3, 4] if shared else [0, 1, 2, 2]
    assert found == expected, "asked only within the window of a failure here, unless shared"
