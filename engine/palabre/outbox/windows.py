"""WhatsApp's 24-hour customer service window, as the outbox keeps to it.

WhatsApp lets a business send free text to a person only within 24 hours of that
person's last message (a tap on a button counts); after that, only a template WhatsApp
approved beforehand. Sending a template does not open the window again. Free text sent
outside it is refused by the provider (Meta 131047, Twilio 63016) after showing `sent`,
so the outbox decides before: the turn that handles a WhatsApp message records when it
came (in the transaction that queues its replies), and before each WhatsApp send the
worker chooses, in this order:
  - inside the window: the text;
  - outside, when the step declared a `template`: the template, its parameters rendered;
  - outside, with none: the row fails at once as `window_closed`, no provider called.
SMS has no window.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Connection, bindparam, select

from palabre.db.driver import DriverStatement
from palabre.db.inserts import insert_for
from palabre.db.schema import whatsapp_windows as windows

WINDOW = 24 * 3600.0
WINDOW_CLOSED = "window_closed"  # the error code of a row that could not be sent


@cache
def _upsert(dialect: str) -> DriverStatement:
    statement = insert_for(dialect, windows).values(
        contact_key=bindparam("b_key"), last_inbound_at=bindparam("b_at")
    )
    later = statement.excluded.last_inbound_at
    # A message redelivered late, or a worker whose clock lags, never moves it back.
    upsert = statement.on_conflict_do_update(
        index_elements=["contact_key"],
        set_={"last_inbound_at": later},
        where=windows.c.last_inbound_at < later,
    )
    return DriverStatement(upsert)  # every WhatsApp message runs it


def note_inbound(conn: Connection, dialect: str, contact_key: str, at: float) -> None:
    """Record, in the caller's transaction, that the contact wrote on WhatsApp at `at`."""
    _upsert(dialect).rowcount(conn, {"b_key": contact_key, "b_at": at})


_LAST = select(windows.c.last_inbound_at).where(windows.c.contact_key == bindparam("b_key"))


def last_inbound(conn: Connection, contact_key: str) -> float | None:
    """When the contact last wrote on WhatsApp, or None."""
    found: float | None = conn.execute(_LAST, {"b_key": contact_key}).scalar_one_or_none()
    return found


def is_open(last: float | None, now: float) -> bool:
    """Whether free text may reach a contact who last wrote at `last`."""
    return last is not None and now - last < WINDOW
