"""The outbox forgets bodies after a while and rows later, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from tests.db_fixtures import Clock, clock, stores, url

from palabre.config import Settings
from palabre.outbox.retention import DAY, HOUR, Retention, problems, purge
from palabre.outbox.rows import Queued
from palabre.runtime.messages import Outbound
from palabre.stores.bundle import Stores

__all__ = ["clock", "stores", "url"]  # fixtures
pytestmark = pytest.mark.anyio
RETENTION = Retention(bodies=72 * HOUR, rows=90 * DAY)


def reply(n: int, **options: bool) -> Queued:
    message = Outbound("whatsapp:+243810000051", f"Réponse {n}", "fr", transport="meta_cloud")
    return Queued(message, "contact-key", "reply", f"inbound-{n}:0", f"inbound-{n}", **options)


async def statuses(box: Stores) -> dict[str, str]:
    return {row.uid: row.status for row in await box.outbox.rows()}


async def test_settled_rows_lose_their_body_then_themselves_and_pending_ones_are_kept(
    stores: Stores, clock: Clock
):
    box = stores.outbox
    sent, queued, _ = await box.enqueue([reply(1), reply(2), reply(3, held=True)])
    await box.status(None, sent, "delivered", None)
    clock.now += 73 * HOUR
    await purge(box, RETENTION)
    assert await box.replies_to("inbound-1") == [], "a settled row's address and text are gone"
    (kept,) = await box.replies_to("inbound-2")
    assert kept.text == "Réponse 2", "a row still to be sent keeps what it must send"
    assert await statuses(stores) == {sent: "delivered", queued: "queued"}, (
        "the delivered row's log stays; the held row, whose turn never committed, is gone"
    )

    clock.now += 90 * DAY
    await purge(box, RETENTION)
    assert await statuses(stores) == {queued: "queued"}, "only a pending row outlives the log"


async def test_rows_younger_than_the_retention_are_untouched(stores: Stores, clock: Clock):
    box = stores.outbox
    sent, held = await box.enqueue([reply(1), reply(2, held=True)])
    await box.status(None, sent, "sent", None)
    clock.now += 71 * HOUR
    await purge(box, RETENTION)
    assert [m.text for m in await box.replies_to("inbound-1")] == ["Réponse 1"]
    assert await statuses(stores) == {sent: "sent", held: "held"}


def test_retention_settings_are_read_and_checked():
    settings = Settings(
        options={"PALABRE_OUTBOX_KEEP_BODIES": "24", "PALABRE_OUTBOX_KEEP_ROWS": "30"}
    )
    assert Retention.from_settings(settings) == Retention(24 * HOUR, 30 * DAY)
    assert Retention.from_settings(Settings()) == RETENTION
    bad = Settings(options={"PALABRE_OUTBOX_KEEP_BODIES": "0", "PALABRE_OUTBOX_KEEP_ROWS": "soon"})
    assert problems(bad) == [
        "PALABRE_OUTBOX_KEEP_BODIES='0' must be a positive number of hours, such as 72",
        "PALABRE_OUTBOX_KEEP_ROWS='soon' must be a positive number of days, such as 90",
    ]
