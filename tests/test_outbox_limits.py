"""Rate limits on a pinned clock: a sender's paced schedule, the window that keeps what
reaches the provider under its rate whatever the network's jitter, a recipient's pace;
in this process's memory and shared by two workers on a real Redis."""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from dataclasses import replace

import pytest

from palabre.config import Settings
from palabre.outbox.limits import MARGIN, RateLimits, Slot
from palabre.outbox.schedules import HELD


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def limits_of(
    clock: Clock, rate: str, redis_url: str | None = None, pace: str = "100/second"
) -> RateLimits:
    """The rate limits of a worker whose Meta sender may send `rate`."""
    options = {"PALABRE_RATE_META": rate, "PALABRE_PACE_PER_CONTACT": pace}
    return RateLimits(Settings(redis_url=redis_url, options=options), clock=clock)


async def reserve(worker: RateLimits, n: int = 0, within: float = math.inf) -> Slot:
    """Contact `n`'s next send on the Meta sender 106540352242922."""
    address = f"whatsapp:+2438100{n:05d}"
    return await worker.reserve("meta_cloud", "106540352242922", address, f"contact-{n}", within)


def busiest_second(times: list[float]) -> int:
    """The most times in any closed one-second window [t, t + 1]."""
    times = sorted(times)
    return max((bisect_right(times, t + 1) - i for i, t in enumerate(times)), default=0)


async def simulate(
    workers: list[RateLimits], clock: Clock, sends: int, seed: int = 7, window: bool = True
) -> tuple[list[float], float]:
    """Send `sends` messages through `workers` in turn, as the outbox worker does: reserve a
    slot, wait for it and for room in the window, take the room, send, say when the answer
    came. Each request takes 1 to 300 ms and reaches the provider at any moment of it.
    Returns the arrival times at the provider and the time the last answer came."""
    rng = random.Random(seed)
    slots = [await reserve(workers[n % len(workers)], n) for n in range(sends)]
    if not window:
        slots = [replace(slot, rate=None) for slot in slots]  # pacing alone
    events = [(slot.at, n, "admit") for n, slot in enumerate(slots)]
    heapq.heapify(events)
    arrivals: list[float] = []
    while events:
        clock.now, n, what = heapq.heappop(events)
        worker, slot = workers[n % len(workers)], slots[n]
        if what == "answered":
            await worker.done(slot)
        elif (wait := await worker.admit(slot)) > 0:
            heapq.heappush(events, (clock.now + wait, n, "admit"))
        else:
            takes = rng.uniform(0.001, 0.3)
            arrivals.append(clock.now + rng.uniform(0, takes))
            heapq.heappush(events, (clock.now + takes, n, "answered"))
    return arrivals, clock.now


# -- one worker, in memory -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_senders_slots_are_evenly_spaced_a_little_under_its_rate():
    clock = Clock()
    worker = limits_of(clock, "10/second")
    slots = [await reserve(worker, n, within=0.25) for n in range(4)]
    gap = 1 / (10 * (1 - MARGIN))
    assert [slot.at - clock.now for slot in slots[:3]] == pytest.approx([0, gap, 2 * gap])
    assert [slot.taken for slot in slots] == [True, True, True, False], "beyond `within`"
    again = await reserve(worker, 4, within=1)
    assert again.taken and again.at == slots[3].at, "a slot not taken was not spent"


@pytest.mark.anyio
async def test_a_send_waits_for_its_slot_then_for_room_in_the_window():
    clock = Clock()
    worker = limits_of(clock, "3/second")
    first, *others, fourth = [await reserve(worker, n) for n in range(4)]
    assert await worker.admit(first) == 0
    assert await worker.admit(others[0]) == pytest.approx(others[0].at - clock.now), "its slot"
    clock.now = fourth.at
    assert [await worker.admit(slot) for slot in others] == [0, 0]
    assert await worker.admit(fourth, take=False) > 0, "three unanswered sends fill it"
    await worker.done(first)  # answered now: it counts one second more
    assert await worker.admit(fourth) == pytest.approx(1.0)
    clock.now += 1.0
    assert await worker.admit(fourth) > 0, "a closed window: still counted on the dot"
    clock.now += 0.001
    assert await worker.admit(fourth, take=False) == 0, "looking takes nothing..."
    assert await worker.admit(fourth) == 0, "...taking does"
    assert await worker.admit(await reserve(worker, 5)) > 0


@pytest.mark.anyio
async def test_a_send_whose_answer_never_came_counts_until_it_is_held_no_more():
    clock = Clock()
    worker = limits_of(clock, "1/second")
    lost, next_one = await reserve(worker, 1), await reserve(worker, 2)
    assert await worker.admit(lost) == 0  # and its worker dies: no `done`
    clock.now = lost.at + HELD + 1  # held, then one window as if answered at the last
    assert await worker.admit(next_one) > 0
    clock.now += 0.001
    assert await worker.admit(next_one) == 0


@pytest.mark.anyio
async def test_a_recipients_pace_holds_its_sends_back_and_frees_them_on_the_clock():
    clock = Clock()
    worker = limits_of(clock, "80/second", pace="2/minute")
    sends = [await reserve(worker, 1, within=1.5) for _ in range(3)]
    assert [slot.taken for slot in sends] == [True, True, False]
    assert sends[2].at == pytest.approx(clock.now + 60), "when the first leaves the minute"
    assert (await reserve(worker, 2, within=1.5)).taken, "another recipient is not held"
    clock.now += 60.001
    assert (await reserve(worker, 1, within=1.5)).taken


@pytest.mark.anyio
async def test_jittered_arrivals_never_exceed_the_rate_though_pacing_alone_would():
    rate, sends = 20, 400
    clock, paced = Clock(), Clock()
    arrivals, _ = await simulate([limits_of(clock, f"{rate}/second")], clock, sends)
    alone = [limits_of(paced, f"{rate}/second")]
    paced_only, _ = await simulate(alone, paced, sends, window=False)
    assert len(arrivals) == sends and busiest_second(arrivals) <= rate
    assert busiest_second(paced_only) > rate, "the window is what keeps this seed under"


@pytest.mark.anyio
async def test_the_window_costs_only_the_time_sends_take():
    clock = Clock()
    start = clock.now
    _, finished = await simulate([limits_of(clock, "20/second")], clock, 400)
    # Each send holds its room one second plus its own time (at most 0.3 s here).
    assert finished - start <= 400 / 20 * 1.3 + 1


# -- two workers, one Redis -----------------------------------------------------------------


@pytest.mark.anyio
async def test_two_workers_on_one_redis_take_turns_in_one_schedule(redis_url):
    clock = Clock()
    one, two = limits_of(clock, "10/second", redis_url), limits_of(clock, "10/second", redis_url)
    slots = [await reserve(worker, n) for n in range(6) for worker in (one, two)]
    starts = [slot.at - clock.now for slot in slots]
    gap = 1 / (10 * (1 - MARGIN))
    assert starts == pytest.approx([n * gap for n in range(12)], abs=1e-6), "one schedule"
    refused = await reserve(one, 20, within=0.5)
    taken = await reserve(two, 21, within=2)
    assert not refused.taken and taken.taken and taken.at == pytest.approx(refused.at)


@pytest.mark.anyio
async def test_two_workers_on_one_redis_share_one_window(redis_url):
    clock = Clock()
    one, two = limits_of(clock, "3/second", redis_url), limits_of(clock, "3/second", redis_url)
    a1, b1, a2, b2 = [await reserve(w, n) for n, w in enumerate([one, two, one, two])]
    clock.now = b2.at
    assert [await one.admit(a1), await two.admit(b1), await one.admit(a2)] == [0, 0, 0]
    assert await two.admit(b2) > 0, "three sends of both workers fill the window"
    await one.done(a1)
    clock.now += 1.001
    assert await two.admit(b2) == 0, "the other worker's answer freed it"


@pytest.mark.anyio
async def test_two_workers_on_one_redis_never_exceed_the_rate_together(redis_url):
    clock, rate = Clock(), 20
    workers = [limits_of(clock, f"{rate}/second", redis_url) for _ in range(2)]
    arrivals, _ = await simulate(workers, clock, 200)
    assert len(arrivals) == 200 and busiest_second(arrivals) <= rate
