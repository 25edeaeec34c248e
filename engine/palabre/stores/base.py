"""The contract every session store keeps.

A store holds one JSON-serialisable session per contact, remembers which inbound
provider message ids were already processed, and serialises the work of one contact.
Contacts are named by their keyed hash (`palabre.contacts.contact_key`), never by an
address, so no phone number reaches a key name or a row.

Writes are all-or-nothing and fenced: `commit` stores the new session and marks the
inbound message as processed in one atomic step, and only while the turn still holds the
contact's lease. A crash, an outage or a lapsed lease never leaves a half-written
conversation, and a retried delivery is either fully new or fully seen.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractAsyncContextManager
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from palabre.stores.lease import Lease

DEFAULT_TTL_SECONDS = 72 * 3600

Session = dict[str, Any]


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions, inbound message ids and per-contact leases live.

    Records expire `ttl_seconds` after their last write (72 hours by default); a commit
    may ask a shorter life for its session. Failures raise `StoreUnavailable` (cannot
    reach), `LockLost` (fenced) or `StoreError`.
    """

    ttl_seconds: int

    async def get(self, contact: str) -> Session | None:
        """Return the contact's session, or None when there is none (or it expired)."""

    async def commit(
        self,
        contact: str,
        session: Session | None,
        *,
        message_id: str | None = None,
        lease: Lease | None = None,
        ttl_seconds: int | None = None,
    ) -> None:
        """Atomically save (or, with None, delete) the session and mark `message_id` seen.

        With a `lease` (from `locked`), the write happens only if the lease is still held,
        else `LockLost`, and the lease is released in the same step. The session lives
        `ttl_seconds` (at most the store's `ttl_seconds`, which is the default).
        """

    async def load(self, contact: str, message_id: str | None) -> tuple[bool, Session | None]:
        """`(seen(message_id), get(contact))` in one call (one round trip where possible)."""

    async def seen(self, message_id: str) -> bool:
        """True when a commit already marked this provider message id as processed."""

    def locked(
        self, contact: str, *, load: bool = False, message_id: str | None = None
    ) -> AbstractAsyncContextManager[Lease]:
        """Hold the contact's lease: one message of a contact at a time, across processes.

        The lease is renewed while held, so a long turn keeps it; a holder that dies lets
        it lapse. Messages are let in in the order they asked (see each store). With
        `load`, the lease's `loaded` is `load(contact, message_id)` read once the turn is
        held, in the same round trip as taking it where the store can.
        """

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    async def aclose(self) -> None:
        """Release connections and files."""


@lru_cache(maxsize=4096)  # a message's key is asked for several times in its turn
def message_key(message_id: str) -> str:
    """How a provider message id is stored: hashed, since it is any string of any length."""
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:32]


def session_ttl(store_ttl: int, wanted: int | None) -> int:
    """The TTL a commit gives its session: what was asked, within the store's cap, >= 1 s."""
    return max(1, min(store_ttl, wanted)) if wanted else store_ttl
