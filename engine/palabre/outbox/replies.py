"""A turn's messages as outbox rows, queued by the conversation service before it commits.

The engine (palabre.runtime.engine) queues a turn's messages, `held`, while it holds the
contact's turn, commits the session and the processed message id, then releases them to
the worker (`Outbox.release`). A crash or a failed commit in between loses nothing and
sends nothing: the provider redelivers, the turn runs again, the rows' idempotency keys
keep the first rows, and the commit releases them. Nothing is queued or sent twice.

Keys name what a row answers (its `inbound_key`) and its place in the turn:
- a reply: `f"{message_key(inbound id)}:{n}"`; `Outbox.replies_to` finds them again for
  a redelivered inbound message, which gets the same replies, not an empty answer;
- a started flow: `f"start:{contact key}:{caller's key}:{n}"`; the same caller's key for
  the same contact never starts the flow twice.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from palabre.outbox.rows import REPLIED, STARTED, Origin, Queued
from palabre.outbox.store import Outbox
from palabre.outbox.windows import Seen
from palabre.runtime.messages import Inbound, Outbound
from palabre.stores.base import message_key


def inbound_key_of(inbound: Inbound) -> str | None:
    """How the outbox names the inbound message a reply answers (None: it has no id)."""
    return message_key(inbound.message_id) if inbound.message_id else None


def start_key_of(contact_key: str, key: str | None) -> str:
    """How the outbox names one start of a flow for a contact (`key`: the caller's)."""
    return f"start:{contact_key}:{key or uuid.uuid4().hex}"


async def queue_replies(
    outbox: Outbox,
    inbound: Inbound,
    messages: list[Outbound],
    contact_key: str,
    inline: bool,
    *,
    on_whatsapp: bool = False,
) -> list[str]:
    """Queue `messages`, the replies to `inbound`, as held rows; returns their uids in
    order. `inline` rows are answered by the transport itself (TwiML, the simulator) and
    never claimed by a worker. `on_whatsapp`: the message came on WhatsApp, whose 24-hour
    window it opens, in the same transaction (palabre.outbox.windows).
    """
    answers = inbound_key_of(inbound)
    seen = Seen(contact_key, inbound.transport, inbound.sent_at) if on_whatsapp else None
    return await _queue(outbox, messages, contact_key, REPLIED, answers, inline, seen)


async def queue_start(
    outbox: Outbox,
    messages: list[Outbound],
    contact_key: str,
    start_key: str,
    origin: Origin = STARTED,
) -> list[str]:
    """Queue the first messages of a started flow, held; returns their uids in order."""
    return await _queue(outbox, messages, contact_key, origin, start_key, inline=False)


async def _queue(
    outbox: Outbox,
    messages: list[Outbound],
    contact_key: str,
    origin: Origin,
    answers: str | None,
    inline: bool,
    seen: Seen | None = None,
) -> list[str]:
    # Messages no transport sends (the terminal's, the test harness's) are not rows.
    sendable = [message for message in messages if message.transport]
    if not sendable:
        if seen is not None:
            await outbox.enqueue([], seen=seen)
        return []
    now = outbox.clock()
    items = []
    for n, message in enumerate(sendable):
        expires_at = _earliest(origin.expires_at, now + message.ttl if message.ttl else None)
        items.append(
            Queued(
                replace(message, expires_at=expires_at) if expires_at else message,
                contact_key,
                origin.kind,
                _key(answers, n),
                answers,
                inline,
                held=not inline,
                purpose=origin.purpose,
                broadcast_id=origin.broadcast_id,
                expires_at=expires_at,
            )
        )
    return await outbox.enqueue(items, replacing=answers, seen=seen)


def _key(answers: str | None, n: int) -> str:
    # Without an inbound id (the terminal), nothing can be redelivered: any unique key.
    return f"{answers}:{n}" if answers else uuid.uuid4().hex


def _earliest(*times: float | None) -> float | None:
    """The earliest of the expiries given (an event's ttl, the step's), or None."""
    given = [time for time in times if time is not None]
    return min(given) if given else None
