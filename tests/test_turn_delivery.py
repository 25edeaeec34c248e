"""The conversation service queues a turn's messages before it commits, and releases them
after: the session, the processed message id and the messages take effect together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.test_entrances import ADDRESS, engine_with

from palabre.db.batches import GroupCommit, group_commit
from palabre.errors import StoreUnavailable
from palabre.runtime.engine import Engine
from palabre.runtime.entrances import Contact
from palabre.runtime.messages import Inbound, Reply
from palabre.stores.base import message_key

pytestmark = pytest.mark.anyio


def hello(message_id: str, text: str = "hello") -> Inbound:
    return Inbound(ADDRESS, text, "whatsapp", message_id=message_id, transport="meta_cloud")


async def statuses(engine: Engine) -> list[str]:
    assert engine.stores is not None
    return [row.status for row in reversed(await engine.stores.outbox.rows())]


class FailingOnce:
    """Makes one awaited method of an object raise StoreUnavailable, once."""

    def __init__(self, owner: object, name: str) -> None:
        self.owner, self.name = owner, name
        self.real = getattr(owner, name)
        setattr(owner, name, self)

    async def __call__(self, *args: object, **kwargs: object) -> None:
        setattr(self.owner, self.name, self.real)
        raise StoreUnavailable("the store is down")


async def test_a_turn_that_fails_to_commit_sends_nothing_until_it_runs_again(tmp_path: Path):
    engine = engine_with(tmp_path)
    try:
        contact = Contact(ADDRESS, transport="meta_cloud", channel="whatsapp")
        await engine.start(contact, "ticket", {"desk": 3}, key="ticket-1")
        FailingOnce(engine.store, "commit")
        with pytest.raises(StoreUnavailable):
            await engine.handle(hello("wamid.1", "yes"))
        assert await statuses(engine) == ["queued", "held"], "the failed turn's reply waits"

        again = await engine.handle(hello("wamid.1", "yes"))  # the provider redelivers
        assert [m.text for m in again.messages] == ["Thank you, see you at desk 3."]
        assert await statuses(engine) == ["queued", "queued"], "released once committed"
        assert engine.stores is not None
        row = await engine.stores.outbox.get(again.uids[0])
        assert row is not None and row.kind == "reply"
    finally:
        await engine.aclose()


async def test_a_turn_run_again_on_a_session_that_moved_on_replaces_its_unsent_replies(
    tmp_path: Path,
):
    engine = engine_with(tmp_path)
    try:
        contact = Contact(ADDRESS, transport="meta_cloud", channel="whatsapp")
        await engine.start(contact, "ticket", {"desk": 3}, key="ticket-1")
        FailingOnce(engine.store, "commit")
        with pytest.raises(StoreUnavailable):
            await engine.handle(hello("wamid.1", "yes"))  # "Thank you", held
        await engine.start(contact, "ticket", {"desk": 7}, key="ticket-2")  # meanwhile
        again = await engine.handle(hello("wamid.1", "yes"))
        assert [m.text for m in again.messages] == ["Thank you, see you at desk 7."]
        assert engine.stores is not None
        (queued,) = await engine.stores.outbox.replies_to(message_key("wamid.1"))
        assert queued.text == "Thank you, see you at desk 7.", "the row says what was answered"
        assert await statuses(engine) == ["queued", "queued", "queued"], (
            "two starts and one reply: the first run's held reply was replaced, not kept"
        )
    finally:
        await engine.aclose()


async def test_a_crash_between_commit_and_release_is_mended_by_the_redelivery(tmp_path: Path):
    engine = engine_with(tmp_path)
    try:
        contact = Contact(ADDRESS, transport="meta_cloud", channel="whatsapp")
        await engine.start(contact, "ticket", {"desk": 3}, key="ticket-1")
        assert engine.stores is not None
        FailingOnce(engine.stores.outbox, "release")
        with pytest.raises(StoreUnavailable):
            await engine.handle(hello("wamid.1", "yes"))
        assert await statuses(engine) == ["queued", "held"]

        again = await engine.handle(hello("wamid.1", "yes"))
        assert again.event_names() == ["message_duplicated"], "the turn is not run twice"
        assert [m.text for m in again.messages] == ["Thank you, see you at desk 3."]
        assert await statuses(engine) == ["queued", "queued"]
    finally:
        await engine.aclose()


async def test_the_same_start_key_for_the_same_contact_starts_the_flow_once(tmp_path: Path):
    engine = engine_with(tmp_path)
    try:
        contact = Contact(ADDRESS, transport="meta_cloud", channel="whatsapp")
        first = await engine.start(contact, "ticket", {"number": "A1"}, key="ticket-A1")
        second = await engine.start(contact, "ticket", {"number": "A1"}, key="ticket-A1")
        assert second.event_names() == ["start_duplicated"]
        assert second.uids == first.uids and len(first.uids) == 1
        other = Contact("whatsapp:+243810000022", transport="meta_cloud", channel="whatsapp")
        third = await engine.start(other, "ticket", {"number": "A1"}, key="ticket-A1")
        assert third.uids != first.uids, "a key is the caller's for one contact"
        assert await statuses(engine) == ["queued", "queued"]
    finally:
        await engine.aclose()


async def test_messages_no_transport_sends_are_not_queued(tmp_path: Path):
    engine = engine_with(tmp_path)
    try:
        reply = await engine.handle(Inbound(ADDRESS, "hello", "cli", message_id="cli.1"))
        assert reply.messages and reply.uids == []
        assert await statuses(engine) == []
    finally:
        await engine.aclose()


async def answered_inline(engine: Engine) -> Reply:
    """A ticket started for the contact, then their answer, answered inline (as TwiML)."""
    contact = Contact(ADDRESS, transport="meta_cloud", channel="whatsapp")
    await engine.start(contact, "ticket", {"desk": 3}, key="ticket-1")
    return await engine.handle(hello("wamid.1", "yes"), inline=True)


async def test_replies_answered_inline_are_sent_once_the_answer_is_built(tmp_path: Path):
    engine = engine_with(tmp_path)
    try:
        assert engine.stores is not None
        reply = await answered_inline(engine)
        assert await statuses(engine) == ["queued", "inline"], "no worker will claim it"
        engine.stores.outbox.delivered_inline(reply.uids)
        await group_commit(engine.stores.database).settle()
        assert await statuses(engine) == ["queued", "sent"]
    finally:
        await engine.aclose()


async def test_the_mark_of_inline_replies_is_committed_though_no_one_awaits_it(tmp_path: Path):
    engine = engine_with(tmp_path)
    assert engine.stores is not None
    reply = await answered_inline(engine)
    engine.stores.outbox.delivered_inline(reply.uids)  # what the TwiML answer does
    await engine.aclose()

    reopened = engine_with(tmp_path)
    try:
        assert await statuses(reopened) == ["queued", "sent"]
    finally:
        await reopened.aclose()


async def test_a_mark_that_cannot_be_written_is_logged_and_raises_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    engine = engine_with(tmp_path)
    try:
        assert engine.stores is not None
        reply = await answered_inline(engine)
        FailingOnce(engine.stores.outbox.commits, "run_batch")
        engine.stores.outbox.delivered_inline(reply.uids)
        await group_commit(engine.stores.database).settle()
        assert "the mark of inline replies not written: the store is down" in caplog.text
        assert await statuses(engine) == ["queued", "inline"], "the log says what it knows"
    finally:
        await engine.aclose()


async def test_settling_waits_for_the_writes_given_without_waiting():
    gate, ran = asyncio.Event(), []

    async def run_batch(works: list) -> list:
        await gate.wait()  # the database is slow to answer
        return [work(None) for work in works]

    commits: GroupCommit[None] = GroupCommit(run_batch)
    commits.soon(ran.append, "a write")
    settling = asyncio.create_task(commits.settle())
    await asyncio.sleep(0)  # one pass of the loop: the batch starts and waits at the gate
    assert not settling.done(), "settle must wait for the batch under way"
    gate.set()
    await settling
    assert ran == [None], "the write ran once, in its batch"
