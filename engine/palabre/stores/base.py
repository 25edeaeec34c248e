"""The contract every session store keeps.

A store holds one JSON-serialisable session per contact, remembers which inbound
provider message ids were already processed, and serialises the work of one contact.
Writes are all-or-nothing: `commit` stores the new session and marks the inbound
message as processed in one atomic step, so a crash or an outage never leaves a
half-written conversation, and a retried delivery is either fully new or fully seen.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

DEFAULT_TTL_SECONDS = 72 * 3600

Session = dict[str, Any]


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions, inbound message ids and per-contact locks live.

    Every record expires `ttl_seconds` after its last write (72 hours by default).
    Failures raise `palabre.errors.StoreUnavailable` (cannot reach) or `StoreError`.
    """

    ttl_seconds: int

    async def get(self, contact: str) -> Session | None:
        """Return the contact's session, or None when there is none (or it expired)."""

    async def commit(
        self, contact: str, session: Session | None, *, message_id: str | None = None
    ) -> None:
        """Atomically save (or, with None, delete) the session and mark `message_id` seen.

        The session's TTL is refreshed. Either everything is written or nothing is.
        """

    async def load(self, contact: str, message_id: str | None) -> tuple[bool, Session | None]:
        """`(seen(message_id), get(contact))` in one call (one round trip where possible)."""

    async def seen(self, message_id: str) -> bool:
        """True when a commit already marked this provider message id as processed."""

    def locked(self, contact: str) -> AbstractAsyncContextManager[None]:
        """Hold the contact's lock: one message of a contact at a time, across processes."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    async def aclose(self) -> None:
        """Release connections and files."""
