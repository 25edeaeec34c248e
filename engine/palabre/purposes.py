"""The consent purposes a message may need (the ledger is palabre.stores.consent).

    service    replies and transactional notifications: granted until withdrawn
    broadcast  bulk and marketing messages: only with an opt-in

Kept apart from the ledger so that the flow loader, the conversation and the outbox rows
name them without importing the database.
"""

from __future__ import annotations

SERVICE, BROADCAST = "service", "broadcast"
PURPOSES = (SERVICE, BROADCAST)
