"""The message log: every outbound message's provider id and delivery status.

It never stores a message body or a phone number: contacts are keyed hashes. Status
callbacks may arrive out of order (a `sent` after its `delivered`), so a status only
moves forward; `failed`, `undelivered` and `expired` are final. Each change is one statement, so
two workers applying callbacks at once cannot move a status back.

It is kept beside the outbox (palabre.outbox), one row per provider message id; a status
callback moves the outbox row of that provider id forward too, in the same transaction.
The `sent` records of concurrent sends share one transaction (a group commit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select, update

from palabre.db.batches import group_commit
from palabre.db.database import Database
from palabre.db.inserts import insert_new
from palabre.db.schema import messages
from palabre.outbox.statuses import forward

RANK = {
    "accepted": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 6,
    "failed": 6,
    "expired": 6,  # dropped unsent by the provider when its validity ran out
}
FINAL = {"undelivered", "failed", "expired"}
_CURRENT_RANK = case(RANK, value=messages.c.status, else_=0)


@dataclass(frozen=True)
class LoggedMessage:
    """One outbound message as the log knows it."""

    provider_id: str
    channel: str
    contact_key: str
    status: str
    error_code: str | None


class MessageLog:
    """Provider ids and statuses of sent messages, and the contacts who opted out."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock
        self._commits = group_commit(database)

    async def sent(
        self, provider_id: str, channel: str, contact_key: str, status: str = "sent"
    ) -> None:
        """Record a message the provider accepted (a known provider id is left as it is)."""
        row = _row(provider_id, channel, contact_key, status, None, self._clock())
        await self._commits.execute(insert_new(self._db.dialect, messages), row)

    async def status(
        self,
        provider_id: str,
        status: str,
        error_code: str | None = None,
        *,
        channel: str = "",
        contact_key: str = "",
    ) -> LoggedMessage:
        """Apply a status callback; a message the log never saw is added."""
        now = self._clock()
        row = _row(provider_id, channel, contact_key, status, error_code, now)
        onward = (
            update(messages)
            .where(
                messages.c.provider_id == provider_id,
                messages.c.status.not_in(FINAL),
                RANK.get(status, 0) > _CURRENT_RANK,
            )
            .values(
                status=status,
                error_code=func.coalesce(error_code, messages.c.error_code),
                updated_at=now,
            )
        )
        in_outbox = forward(status, error_code, now, provider_id=provider_id, uid=None)
        async with self._db.write() as conn:
            added = await conn.execute(insert_new(self._db.dialect, messages), row)
            if added.first() is None:
                await conn.execute(onward)
            if in_outbox is not None:
                await conn.execute(in_outbox)
            found = (await conn.execute(_select(provider_id))).first()
        assert found is not None
        return LoggedMessage(*found)

    async def get(self, provider_id: str) -> LoggedMessage | None:
        """The logged message, or None when the log never saw it."""
        async with self._db.read() as conn:
            found = (await conn.execute(_select(provider_id))).first()
        return LoggedMessage(*found) if found else None


def _row(
    provider_id: str, channel: str, key: str, status: str, error: str | None, now: float
) -> dict[str, object]:
    return {
        "provider_id": provider_id,
        "channel": channel,
        "contact_key": key,
        "status": status,
        "error_code": error,
        "created_at": now,
        "updated_at": now,
    }


def _select(provider_id: str) -> Select[Any]:
    columns = (messages.c[name] for name in LoggedMessage.__dataclass_fields__)
    return select(*columns).where(messages.c.provider_id == provider_id)
