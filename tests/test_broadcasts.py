"""Broadcasts in-process, on SQLite and PostgreSQL: the snapshot and its cost, feeding the
outbox a few seconds ahead of the cap, a restart that starts nobody twice, consent
withdrawn after the snapshot, retry-failed, the status, and an erased contact's line.

The sender here is the database itself: `send_some` marks queued rows sent, as a worker
would, so these tests watch the feeder and the store, not a provider (the command's test,
tests/test_broadcast_command.py, sends through real processes to a fake Twilio)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from tests.db_fixtures import open_database, url

from palabre.bootstrap import build_engine
from palabre.broadcasts.audience import read_audience
from palabre.broadcasts.planning import plan_broadcast
from palabre.broadcasts.sending import Feeder
from palabre.broadcasts.store import Broadcast, BroadcastStore
from palabre.config import Settings
from palabre.db import migrate
from palabre.db.schema import broadcast_recipients, metadata, outbox
from palabre.outbox.retention import Retention, purge
from palabre.privacy import erase_contact
from palabre.purposes import BROADCAST
from palabre.runtime.engine import Engine
from palabre.runtime.messages import Inbound

__all__ = ["url"]  # the fixture, shared in tests/db_fixtures.py

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent
SECRET = "broadcasts-test-secret-" + "0" * 32
PARAMS = {"date": "3 décembre", "message": "Réunion des parents à 17 h."}


def number(n: int) -> str:
    return f"+24381{n:07d}"


@pytest.fixture
async def engine(url: str, tmp_path: Path) -> AsyncIterator[Engine]:
    database = open_database(url)
    await migrate.upgrade(database)
    await database.aclose()
    settings = Settings(
        data_dir=tmp_path / "data", database_url=url, secrets={"PALABRE_SECRET": SECRET}
    )
    built = build_engine([ROOT / "flows"], settings)
    yield built
    await built.aclose()


async def consent(engine: Engine, *numbers: str, granted: bool = True) -> None:
    assert engine.stores is not None
    for written in numbers:
        key = engine.contact_key(f"tel:{written}")
        await engine.stores.consent.record(key, BROADCAST, granted, "import")


async def snapshot(engine: Engine, tmp_path: Path, rows: list[str]) -> tuple[Broadcast, object]:
    """Read `rows` (after a header) as an audience, plan it, and store the broadcast."""
    path = tmp_path / "parents.csv"
    path.write_text("telephone;langue;child;class\n" + "\n".join(rows) + "\n", encoding="utf-8")
    flow = engine.flows["school_notice"]
    audience = read_audience(
        path, region="CD", channel=None, languages=flow.settings.locales, key_of=engine.contact_key
    )
    args = argparse.Namespace(purpose=BROADCAST, transport="twilio")
    plan = await plan_broadcast(engine, engine.settings, "school_notice", PARAMS, audience, args)
    broadcast = Broadcast(
        "b1", "school_notice", "", "twilio", BROADCAST, PARAMS, "parents.csv",
        plan.estimate.recipients, engine.clock(),
    )  # fmt: skip
    await store_of(engine).create(broadcast, audience.recipients)
    return broadcast, plan


def store_of(engine: Engine) -> BroadcastStore:
    assert engine.stores is not None
    return BroadcastStore(engine.stores.database)


def feeder(engine: Engine, broadcast: Broadcast, ahead: int) -> Feeder:
    return Feeder(engine, store_of(engine), broadcast, lambda _: "twilio", ahead=ahead, poll=0.01)


async def send_some(engine: Engine, most: int) -> int:
    """Mark up to `most` queued rows sent, oldest first, as a worker would."""
    assert engine.stores is not None

    def send(conn) -> int:
        due = select(outbox.c.id).where(outbox.c.status == "queued").order_by(outbox.c.id)
        ids = [row[0] for row in conn.execute(due.limit(most))]
        if ids:
            conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(status="sent"))
        return len(ids)

    return await engine.stores.database.run(send)


async def rows_by_address(engine: Engine) -> dict[str, int]:
    """How many of the broadcast's messages each address has in the outbox."""
    assert engine.stores is not None

    def count(conn) -> dict[str, int]:
        query = select(outbox.c.address, func.count()).where(outbox.c.kind == "broadcast")
        query = query.group_by(outbox.c.address)
        return dict(conn.execute(query).all())

    return await engine.stores.database.run(count)


async def test_the_snapshot_accounts_for_every_line_and_costs_each_language(engine, tmp_path):
    await consent(engine, number(1), number(2), number(3), number(5))
    broadcast, plan = await snapshot(
        engine,
        tmp_path,
        [
            f"{number(1)};fr;Amani;CM1",
            f"{number(2)};ar;Youssef;CE2",
            f"{number(3)};en;Ben;CP",
            "0812;fr;Nobody;CP",  # invalid
            f"{number(1)};fr;Amani;CM1",  # the first line again
            f"{number(4)};fr;Bea;CP",  # never agreed
            f"{number(5)};fr;Gaëlle;CP",  # 'ë' is not in GSM 03.38
        ],
    )
    assert plan.counts.lines == 7
    assert plan.counts.skipped == {"invalid": 1, "duplicate": 1, "no_consent": 1}
    assert plan.estimate.recipients == 4 and plan.estimate.messages == 4
    french, arabic = plan.estimate.languages["fr"], plan.estimate.languages["ar"]
    assert french.recipients == 2 and french.encodings == {"GSM-7", "UCS-2"}, (
        "é and à are GSM-7; one child's name with ë makes that parent's SMS UCS-2"
    )
    assert arabic.encodings == {"UCS-2"} and arabic.segments >= 2, "Arabic costs UCS-2 segments"
    assert plan.seconds is not None and plan.rate.startswith("10/second")
    status = await store_of(engine).failures(broadcast.id)
    assert [(f.line, f.code) for f in status] == [
        (5, "invalid"), (6, "duplicate"), (7, "no_consent"),
    ]  # fmt: skip
    assert all("0812" not in (f.reason or "") for f in status), "no number in the reasons"


async def test_the_feeder_stays_a_few_messages_ahead_and_a_restart_starts_nobody_twice(
    engine, tmp_path
):
    parents = [number(n) for n in range(12)]
    await consent(engine, *parents)
    broadcast, _ = await snapshot(engine, tmp_path, [f"{p};fr;Enfant;CM1" for p in parents])
    store = store_of(engine)
    # A first process started three lines, then died before it marked them started.
    first = feeder(engine, broadcast, ahead=4)
    for recipient in await store.waiting(broadcast.id, 3):
        await first._start_one(recipient)
    assert (await store.progress(broadcast.id)).waiting == 12, "marked started only after"

    seen = await to_the_end(engine, feeder(engine, broadcast, ahead=4))
    assert max(seen) <= 4, f"never more than `ahead` queued at once: {seen}"
    counts = await rows_by_address(engine)
    assert counts == {f"tel:{p}": 1 for p in parents}, "each parent's message queued once"
    rows = await _outbox(engine)
    assert {(r.kind, r.purpose) for r in rows} == {("broadcast", BROADCAST)}
    listed = await engine.stores.outbox.rows(100, broadcast_id=broadcast.id)
    assert len(listed) == 12 and await engine.stores.outbox.rows(100, broadcast_id="b2") == []


async def to_the_end(engine: Engine, running: Feeder) -> list[int]:
    """Run the feeder while a sender sends one queued row at a time, until the broadcast
    is finished; returns how many of its messages were queued at each look."""
    seen: list[int] = []
    done = asyncio.Event()

    async def sender() -> None:
        while not done.is_set():
            if not await send_some(engine, 1):
                await asyncio.sleep(0.005)  # nothing queued: let the feeder run

    task = asyncio.create_task(sender())
    try:
        final = await asyncio.wait_for(running.run(lambda p: seen.append(p.unsent)), 60)
    finally:
        done.set()
        await task
    assert final.finished
    return seen


async def _outbox(engine: Engine) -> list:
    assert engine.stores is not None
    return await engine.stores.outbox.rows(100)


async def test_a_withdrawal_after_the_snapshot_skips_the_line_before_it_starts(engine, tmp_path):
    await consent(engine, number(1), number(2))
    broadcast, _ = await snapshot(
        engine, tmp_path, [f"{number(1)};fr;A;CM1", f"{number(2)};en;B;CM2"]
    )
    await consent(engine, number(2), granted=False)  # STOP, after the snapshot
    await to_the_end(engine, feeder(engine, broadcast, ahead=10))
    assert await rows_by_address(engine) == {f"tel:{number(1)}": 1}
    progress = await store_of(engine).progress(broadcast.id)
    assert progress.skipped == {"no_consent": 1} and progress.waiting == 0


async def test_retry_failed_queues_again_only_what_gave_up_on_passing_errors(engine, tmp_path):
    parents = [number(n) for n in range(5)]
    await consent(engine, *parents)
    broadcast, _ = await snapshot(engine, tmp_path, [f"{p};fr;E;CM1" for p in parents])
    await to_the_end(engine, feeder(engine, broadcast, ahead=10))
    # (status, gave up after retryable errors only, address kept)
    outcomes = [
        ("failed", 1, True),  # the provider was down for every attempt
        ("failed", 0, True),  # refused for good (an invalid number)
        ("unconfirmed", None, True),  # may have arrived
        ("sent", None, True),
        ("failed", 1, False),  # gave up, then the retention blanked it
    ]
    assert engine.stores is not None

    def settle(conn) -> None:
        ids = [r[0] for r in conn.execute(select(outbox.c.id).order_by(outbox.c.id))]
        for row_id, (status, gave_up, kept) in zip(ids, outcomes, strict=True):
            values = {"status": status, "gave_up": gave_up, "error_code": "30008"}
            values |= {} if kept else {"address": "", "payload": "{}"}
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))

    await engine.stores.database.run(settle)
    store = store_of(engine)
    failures = await store.failures(broadcast.id)
    assert [(f.line, f.status) for f in failures] == [
        (2, "failed"), (3, "failed"), (4, "unconfirmed"), (6, "failed"),
    ]  # fmt: skip

    assert await store.retry_failed(broadcast.id) == 1
    progress = await store.progress(broadcast.id)
    assert progress.messages == {"queued": 1, "failed": 2, "unconfirmed": 1, "sent": 1}, (
        "a failure refused for good, one that may have arrived, and a blanked one stay"
    )
    (again,) = await engine.stores.outbox.rows(10, ("queued",))
    assert (again.attempts, again.error_code, again.last_error) == (0, None, None)


async def test_an_erased_contact_leaves_no_trace_in_the_audience_and_is_never_started(
    engine, url, tmp_path
):
    await consent(engine, number(1), number(2))
    broadcast, _ = await snapshot(
        engine, tmp_path, [f"{number(1)};fr;Zawadi;CM1", f"{number(2)};fr;Other;CM2"]
    )
    await erase_contact(engine, f"tel:{number(1)}")
    await to_the_end(engine, feeder(engine, broadcast, ahead=10))
    assert await rows_by_address(engine) == {f"tel:{number(2)}": 1}
    assert engine.stores is not None

    def everything(conn) -> str:
        return repr([conn.execute(select(table)).all() for table in metadata.sorted_tables])

    left = await engine.stores.database.run(everything)
    assert number(1).lstrip("+") not in left and "Zawadi" not in left
    lines = await engine.stores.database.run(
        lambda conn: conn.execute(select(broadcast_recipients.c.skip)).scalars().all()
    )
    assert sorted(lines, key=str) == sorted(["erased", None], key=str)


@pytest.mark.parametrize("word", ["STOP", "Arrêt", "توقف"])
async def test_a_parent_who_says_stop_in_any_language_gets_no_more_but_is_still_answered(
    engine, tmp_path, word
):
    parents = [number(n) for n in range(3)]
    await consent(engine, *parents)
    broadcast, _ = await snapshot(engine, tmp_path, [f"{p};fr;E;CM1" for p in parents])
    said = await engine.handle(
        Inbound(f"tel:{number(2)}", word, channel="sms", transport="twilio", message_id="m1")
    )
    assert said.messages, "the STOP is confirmed"
    await to_the_end(engine, feeder(engine, broadcast, ahead=10))
    assert number(2) not in str(await rows_by_address(engine)), "nothing more from the broadcast"
    answered = await engine.handle(
        Inbound(f"tel:{number(2)}", "school", channel="sms", transport="twilio", message_id="m2")
    )
    started = [e.data["flow"] for e in answered.events if e.name == "conversation_started"]
    assert started == ["school_opt_in"] and answered.uids, "a flow they start is answered"


LOOKUP = """\
id: lookup_notice
settings: {locales: [fr], default_locale: fr}
steps:
  find:
    kind: action
    action: qr.code
    with: {text: "{{ params.child }}"}
    save_as: qr
  tell: {kind: end, text: "Votre code : {{ params.child }}."}
"""


async def test_a_flow_that_runs_an_action_first_is_sent_with_its_cost_unknown(url, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "lookup.yaml").write_text(LOOKUP, encoding="utf-8")
    database = open_database(url)
    await migrate.upgrade(database)
    await database.aclose()
    settings = Settings(
        data_dir=tmp_path / "data", database_url=url, secrets={"PALABRE_SECRET": SECRET}
    )
    built = build_engine([flows], settings)
    try:
        path = tmp_path / "parents.csv"
        path.write_text(f"address,child\n{number(1)},Amani\n", encoding="utf-8")
        audience = read_audience(
            path, region="CD", channel=None, languages=("fr",), key_of=built.contact_key
        )
        args = argparse.Namespace(purpose="service", transport="twilio")
        plan = await plan_broadcast(built, settings, "lookup_notice", {}, audience, args)
    finally:
        await built.aclose()
    assert audience.recipients[0].skip is None, "the line is sent: the action runs then"
    assert (plan.estimate.sendable, plan.estimate.unknown, plan.expected) == (1, 1, 1)


async def test_a_service_broadcast_warns_of_those_who_said_stop(engine, tmp_path):
    await consent(engine, number(1), granted=False)  # STOP
    path = tmp_path / "parents.csv"
    path.write_text(f"address,child,class\n{number(1)},A,B\n{number(2)},C,D\n", encoding="utf-8")
    audience = read_audience(
        path, region="CD", channel=None, languages=("fr",), key_of=engine.contact_key
    )
    args = argparse.Namespace(purpose="service", transport="twilio")
    plan = await plan_broadcast(engine, engine.settings, "school_notice", PARAMS, audience, args)
    assert plan.estimate.sendable == 2, "service needs no opt-in"
    assert len(plan.warnings) == 1 and "1 of the recipients said STOP" in plan.warnings[0]


async def test_a_broadcast_left_paused_loses_its_waiting_lines_to_the_retention(engine, tmp_path):
    await consent(engine, number(1), number(2))
    broadcast, _ = await snapshot(
        engine, tmp_path, [f"{number(1)};fr;Zawadi;CM1", f"{number(2)};fr;Other;CM2"]
    )
    assert engine.stores is not None
    await purge(engine.stores.outbox, Retention(bodies=0.0))  # "72 hours" have passed
    progress = await store_of(engine).progress(broadcast.id)
    assert progress.skipped == {"expired": 2} and progress.waiting == 0

    def everything(conn) -> str:
        return repr([conn.execute(select(table)).all() for table in metadata.sorted_tables])

    assert "Zawadi" not in await engine.stores.database.run(everything)
    await store_of(engine).purge(engine.clock() + 1, engine.clock() + 1)  # and 90 days
    assert await store_of(engine).get(broadcast.id) is None
