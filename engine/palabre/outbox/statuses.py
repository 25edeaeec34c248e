"""The statuses of an outbox row, and the one rule that moves them: forward only.

    held ─▶ queued ─▶ sending ─▶ sent ─▶ delivered ─▶ read
      ▲  │       │  └──▶ unconfirmed ─▶ (a provider status confirms it: sent, delivered...)
      └──┼───────┘ retry, throttled, lapsed claim before the send started
         └──▶ expired            sending ─▶ failed (permanent, or out of attempts)
                                 sending ─▶ skipped (no consent: the provider never called)
    inline ─▶ sent               (replies the transport answered inline: TwiML)

A turn's rows are `held` until the turn that queued them commits its session; then they
are released (`queued`), so a turn that fails to commit sends nothing until its message
is redelivered and the turn runs again. No worker claims a held row. A held row keeps
its place in the contact's line (the next turn's rows may be queued between the commit
and the release), but only for `HOLD_BLOCKS` seconds: a turn that never committed does
not hold its contact's later messages back.

`failed`, `undelivered`, `expired` and `skipped` are final (`skipped`: the contact had not
given the consent the row needs, palabre.stores.consent). `unconfirmed` (the request may have gone
out, no answer came back) is final for the worker, which never resends it blindly, but a
later provider status may still confirm it forward. Provider callbacks only ever apply
`sent`, `delivered`, `read`, `failed`, `undelivered` and `expired`: a provider's own
`queued` must never make a row look unsent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Update, case, func, update

from palabre.db.schema import outbox

HELD, QUEUED, INLINE, SENDING, SENT = "held", "queued", "inline", "sending", "sent"
UNCONFIRMED, EXPIRED, FAILED, SKIPPED = "unconfirmed", "expired", "failed", "skipped"
PENDING = (QUEUED, SENDING)  # unfinished for the worker: they hold a contact's later rows
HOLD_BLOCKS = 60.0  # seconds a held row holds its contact's later rows (a commit takes ms)
FINAL = ("failed", "undelivered", "expired", SKIPPED)
NEEDS_ATTENTION = ("failed", "undelivered", "unconfirmed", "expired")
RANK = {
    HELD: 0,
    QUEUED: 0,
    INLINE: 0,
    SENDING: 1,
    UNCONFIRMED: 2,
    SENT: 3,
    "delivered": 4,
    "read": 5,
    "failed": 6,
    "undelivered": 6,
    EXPIRED: 6,
    SKIPPED: 6,
}
# `expired`: the provider dropped it unsent when its validity ran out (Twilio's 30036).
FROM_PROVIDER = frozenset({SENT, "delivered", "read", "failed", "undelivered", EXPIRED})
ALL = tuple(RANK)
_CURRENT = case(RANK, value=outbox.c.status, else_=0)


def further(current: str, candidate: str | None) -> str:
    """The further of two statuses (a final one is never left)."""
    if candidate is None or current in FINAL:
        return current
    return candidate if RANK.get(candidate, 0) > RANK.get(current, 0) else current


def forward(
    status: str, error_code: str | None, now: float, *, provider_id: str | None, uid: str | None
) -> Update | None:
    """The UPDATE that applies a provider's status to its row, forward only; None when the
    status is not one a provider may set (or no row is named)."""
    if status not in FROM_PROVIDER or not (provider_id or uid):
        return None
    which: Any = outbox.c.uid == uid if uid else outbox.c.provider_id == provider_id
    return (
        update(outbox)
        .where(which, outbox.c.status.not_in(FINAL), RANK[status] > _CURRENT)
        .values(
            status=status,
            error_code=func.coalesce(error_code, outbox.c.error_code),
            updated_at=now,
        )
    )
