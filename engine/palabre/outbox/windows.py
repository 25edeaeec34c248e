"""WhatsApp's 24-hour customer service window, as the outbox keeps to it.

WhatsApp lets a business send free text to a person only within 24 hours of that
person's last message (a tap on a button counts); after that, only a template WhatsApp
approved beforehand. Sending a template does not open the window again. Free text sent
outside it is refused by the provider (Meta 131047, Twilio 63016) after showing `sent`,
so the outbox decides before. The turn that handles a WhatsApp message records when the
person wrote (the provider's timestamp when it gives one, never later than now), to which
business number (the transport: each has its own window), in the transaction that queues
its replies; the worker reads it with each claimed row and chooses, in this order:
  - inside the window: the text;
  - outside, when the step declared a `template`: the template, its parameters rendered;
  - outside, with none: the row fails at once as `window_closed`, no provider called.
SMS has no window.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Connection, bindparam, select

from palabre.db.driver import DriverStatement
from palabre.db.inserts import insert_for
from palabre.db.schema import whatsapp_windows as windows

WINDOW = 24 * 3600.0
WINDOW_CLOSED = "window_closed"  # the error code of a row that could not be sent


@dataclass(frozen=True)
class Seen:
    """A WhatsApp contact who just wrote, to the business number of `transport`; `at` is
    when they wrote by the provider's clock, when it says (Meta's timestamp)."""

    contact_key: str
    transport: str
    at: float | None = None


@cache
def _upsert(dialect: str) -> DriverStatement:
    statement = insert_for(dialect, windows).values(
        contact_key=bindparam("b_key"),
        transport=bindparam("b_transport"),
        last_inbound_at=bindparam("b_at"),
    )
    later = statement.excluded.last_inbound_at
    # A message redelivered late, or a worker whose clock lags, never moves it back.
    upsert = statement.on_conflict_do_update(
        index_elements=["contact_key", "transport"],
        set_={"last_inbound_at": later},
        where=windows.c.last_inbound_at < later,
    )
    return DriverStatement(upsert)  # every WhatsApp message runs it


def note_inbound(conn: Connection, dialect: str, seen: Seen, now: float) -> None:
    """Record, in the caller's transaction, that the contact wrote: when the provider
    says, never later than `now` (a webhook that came late must not stretch the window)."""
    at = now if seen.at is None else min(now, seen.at)
    values = {"b_key": seen.contact_key, "b_transport": seen.transport, "b_at": at}
    _upsert(dialect).rowcount(conn, values)


_LAST = DriverStatement(
    select(windows.c.last_inbound_at).where(
        windows.c.contact_key == bindparam("b_key"), windows.c.transport == bindparam("b_via")
    )
)


def last_inbound(conn: Connection, contact_key: str, transport: str) -> float | None:
    """When the contact last wrote to the business number of `transport`, or None."""
    found = _LAST.first(conn, {"b_key": contact_key, "b_via": transport})
    return None if found is None else float(found[0])


def is_open(last: float | None, now: float) -> bool:
    """Whether free text may reach a contact who last wrote at `last`."""
    return last is not None and now - last < WINDOW
