"""A turn's replies as outbox rows: one call for every transport's webhook.

Each reply's idempotency key is `f"{inbound_key}:{n}"`, so a turn processed twice (a
retried webhook) queues nothing twice, and `Outbox.replies_to(inbound_key)` finds them
again for a redelivered inbound message.
"""

from __future__ import annotations

import uuid

from palabre.outbox.rows import Queued
from palabre.outbox.store import Outbox
from palabre.runtime.messages import Inbound, Outbound
from palabre.stores.base import message_key


def _key(inbound_key: str | None, n: int) -> str:
    # Without an inbound id (the terminal), nothing can be redelivered: any unique key.
    return f"{inbound_key}:{n}" if inbound_key else uuid.uuid4().hex


def inbound_key_of(inbound: Inbound) -> str | None:
    """How the outbox names the inbound message a reply answers (None: it has no id)."""
    return message_key(inbound.message_id) if inbound.message_id else None


async def enqueue_replies(
    outbox: Outbox,
    inbound: Inbound,
    messages: list[Outbound],
    contact_key: str,
    inline: bool = False,
    *,
    channel: str = "",
) -> list[str]:
    """Queue `messages`, the replies to `inbound`, as rows; returns their uids in order.

    `inline` rows are answered by the transport itself (TwiML) and never claimed by a
    worker; others are sent by the worker, which this wakes. `channel` names the
    transport when the messages do not (before `Outbound.channel`).
    """
    if not messages:
        return []
    inbound_key = inbound_key_of(inbound)
    items = [
        Queued(
            message,
            contact_key,
            "reply",
            _key(inbound_key, n),
            inbound_key,
            inline,
            channel=channel,
        )
        for n, message in enumerate(messages)
    ]
    uids = await outbox.enqueue(items)
    if not inline:
        outbox.wake()
    return uids
