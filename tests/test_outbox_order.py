"""A turn's held rows keep their place in the contact's line: a later turn's rows, queued
while the earlier turn commits, never leave before them. A held row whose turn never
committed stops holding the line after a while. On SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from tests.db_fixtures import Clock, clock, stores, url

from palabre.outbox.claims import Claims
from palabre.outbox.rows import Queued
from palabre.outbox.statuses import HOLD_BLOCKS
from palabre.runtime.messages import Outbound
from palabre.stores.bundle import Stores

__all__ = ["clock", "stores", "url"]  # fixtures
pytestmark = pytest.mark.anyio


def reply(turn: int, held: bool) -> Queued:
    message = Outbound("whatsapp:+243810000061", f"turn {turn}", "fr", transport="meta_cloud")
    return Queued(message, "contact", "reply", f"in-{turn}:0", f"in-{turn}", held=held)


async def claimed_texts(stores: Stores) -> list[str]:
    claims = Claims(stores.outbox, "worker-1", 60.0)
    rows = await claims.claim(10, ["meta_cloud"])
    return [row.outbound().text for row in rows]


async def test_a_later_turn_waits_behind_a_held_row_until_it_is_released(stores: Stores):
    (first,) = await stores.outbox.enqueue([reply(1, held=True)])  # committing...
    await stores.outbox.enqueue([reply(2, held=False)])  # the next turn, already released
    assert await claimed_texts(stores) == [], "turn 2 may not overtake turn 1"
    await stores.outbox.release([first])
    assert await claimed_texts(stores) == ["turn 1"], "then in order, one in flight"


async def test_a_held_row_whose_turn_never_committed_stops_holding_the_line(
    stores: Stores, clock: Clock
):
    await stores.outbox.enqueue([reply(1, held=True)])  # its commit failed for good
    await stores.outbox.enqueue([reply(2, held=False)])
    clock.now += HOLD_BLOCKS + 1
    assert await claimed_texts(stores) == ["turn 2"]
