"""The event starter (palabre.api.starter) on both databases: each event the API took is
started once, in each person's order, by any number of starters; one that dies after its
flows ran leaves the event to another, which queues nothing twice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import Connection, select
from tests.db_fixtures import SECRET, Clock, open_database, url
from tests.twilio_fakes import settings_for

import palabre_twilio
from palabre import builtins
from palabre.api.delivery import EventDesk
from palabre.api.queue import UNFINISHED
from palabre.api.requests import read_event
from palabre.api.starter import EventStarter
from palabre.bootstrap import build_engine
from palabre.db import migrate
from palabre.db.schema import outbox
from palabre.errors import StoreUnavailable
from palabre.plugins import make_plugin_manager
from palabre.runtime.engine import Engine
from palabre.stores.bundle import Stores

pytestmark = pytest.mark.anyio
__all__ = ["url"]  # the fixture, shared in tests/db_fixtures.py

FLOW = """\
id: ticket
settings: {locales: [fr], default_locale: fr}
triggers: {event: ticket.moved}
steps:
  told: {kind: end, text: "Ticket {{ event.data.n }}"}
"""
PEOPLE = [f"+24381000{n:04d}" for n in range(5)]


async def engine_on(url: str, tmp_path: Path, clock: Clock) -> Engine:
    """An engine on the flow above, its stores on the database at `url` (its own
    connections: two of these are two processes' views of one database)."""
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "ticket.yaml").write_text(FLOW, encoding="utf-8")
    database = open_database(url)
    await migrate.upgrade(database)
    stores = Stores.on(database, SECRET, clock)
    plugins = make_plugin_manager([builtins, palabre_twilio], entry_points=False)
    settings = settings_for(tmp_path)  # one session store: the data folder's
    return build_engine([flows], settings, plugins=plugins, stores=stores, clock=clock)


async def take(engine: Engine, to: str, event_id: str, n: int) -> None:
    body = {"event": "ticket.moved", "id": event_id, "to": to, "data": {"n": n}}
    await EventDesk(engine).take("queue", read_event(body, None, lambda _: True))


async def texts_by_person(engine: Engine) -> dict[str, list[str]]:
    """The outbox's texts to each person, in the order they would be sent (read from the
    rows, as a test may)."""

    def read(conn: Connection) -> list[tuple[str, str]]:
        query = select(outbox.c.address, outbox.c.payload).order_by(outbox.c.id)
        return [(address, payload) for address, payload in conn.execute(query)]

    found: dict[str, list[str]] = {}
    for address, payload in await engine.stores.database.run(read):
        found.setdefault(address, []).append(json.loads(payload)["text"])
    return found


async def test_two_starters_start_each_event_once_in_each_persons_order(url, tmp_path):
    clock = Clock()
    one, two = await engine_on(url, tmp_path, clock), await engine_on(url, tmp_path, clock)
    try:
        for n in range(4):
            for person in PEOPLE:
                await take(one if n % 2 else two, person, f"{person}-{n}", n)
        starters = [EventStarter(engine, concurrency=2, poll=0.01) for engine in (one, two)]
        running = [asyncio.create_task(starter.run()) for starter in starters]
        for _ in range(2000):  # bounded: each pass is a database read
            waiting = [await one.stores.events.status("queue", f"{p}-{n}") for p in PEOPLE
                       for n in range(4)]  # fmt: skip
            if not any(found and found.status in UNFINISHED for found in waiting):
                break
            await asyncio.sleep(0.01)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        texts = await texts_by_person(one)
    finally:
        await one.aclose()
        await two.aclose()
    assert {found.status for found in waiting if found} == {"started"}, waiting
    assert all(len(found.messages) == 1 for found in waiting if found)
    assert texts == {f"tel:{p}": [f"Ticket {n}" for n in range(4)] for p in PEOPLE}, texts


async def test_a_starter_that_died_after_its_flows_ran_leaves_nothing_to_send_twice(url, tmp_path):
    clock = Clock()
    dies, lives = await engine_on(url, tmp_path, clock), await engine_on(url, tmp_path, clock)
    try:
        await take(dies, PEOPLE[0], "T-1", 1)

        async def lost(*args: object) -> None:  # its status never written: as if it died
            raise StoreUnavailable("the database went away")

        dies.stores.events.finish = lost  # type: ignore[method-assign]
        await EventStarter(dies).start_now("queue", "T-1")
        held = await lives.stores.events.status("queue", "T-1")
        await EventStarter(lives).start_now("queue", "T-1")
        before_lapse = await lives.stores.events.status("queue", "T-1")
        clock.now += 61  # its claim lapses (PALABRE_OUTBOX_LEASE, 60 s)
        await EventStarter(lives).start_now("queue", "T-1")
        after = await lives.stores.events.status("queue", "T-1")
        rows = await lives.stores.outbox.rows(10)
    finally:
        await dies.aclose()
        await lives.aclose()
    assert held and before_lapse and held.status == before_lapse.status == "starting"
    (row,) = rows
    assert after and after.status == "started" and [m["id"] for m in after.messages] == [row.uid]


async def test_a_claim_holds_one_event_per_person_and_the_next_waits_for_it(url, tmp_path):
    clock = Clock()
    one, two = await engine_on(url, tmp_path, clock), await engine_on(url, tmp_path, clock)
    try:
        for n in range(3):
            await take(one, PEOPLE[0], f"first-{n}", n)
        await take(one, PEOPLE[1], "second-0", 0)
        claimed = await one.stores.events.claim("one", 10, 60.0)
        meanwhile = await two.stores.events.claim("two", 10, 60.0)
        await one.stores.events.finish(claimed[0], "one", "started", [], None)
        then = await two.stores.events.claim("two", 10, 60.0)
    finally:
        await one.aclose()
        await two.aclose()
    assert [event.event_id for event in claimed] == ["first-0", "second-0"]
    assert meanwhile == [], "each person's next event waits until the one before started"
    assert [event.event_id for event in then] == ["first-1"]
