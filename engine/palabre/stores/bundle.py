"""`Stores`: every durable store, on one database, as the `make_stores` hook returns them.

Sessions are not among them: they live in the session store (Redis or embedded), with
their TTL. These records have no TTL and are shared by every worker of a deployment.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from palabre.api.queue import EventQueue
from palabre.config import Settings
from palabre.db.batches import group_commit
from palabre.db.database import Database
from palabre.outbox.store import Outbox
from palabre.stores.consent import ConsentLedger
from palabre.stores.contacts import ContactStore
from palabre.stores.media import MediaStore
from palabre.stores.messagelog import MessageLog
from palabre.stores.registry import Registry
from palabre.stores.tasks import TaskQueue


@dataclass
class Stores:
    """The registry, media, message log, tasks, contacts, the outbox, consent, and the
    events the API took."""

    database: Database
    registry: Registry
    media: MediaStore
    messages: MessageLog
    tasks: TaskQueue
    contacts: ContactStore
    outbox: Outbox
    consent: ConsentLedger
    events: EventQueue

    @classmethod
    def on(
        cls, database: Database, media_secret: bytes, clock: Callable[[], float] = time.time
    ) -> Stores:
        """Every store on `database`; `media_secret` signs media URLs."""
        return cls(
            database,
            Registry(database, clock),
            MediaStore(database, media_secret, clock),
            MessageLog(database, clock),
            TaskQueue(database, clock),
            ContactStore(database, clock),
            Outbox(database, clock),
            ConsentLedger(database, clock),
            EventQueue(database, clock),
        )

    async def open(self) -> str | None:
        """Check the schema now rather than at first use (StoreError when it is behind);
        returns a line to show when a new embedded database was created."""
        return await self.database.prepare()

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        await self.database.ping()

    async def aclose(self) -> None:
        """Commit the writes still queued, then close the database's connections."""
        await group_commit(self.database).settle()
        await self.database.aclose()


def open_stores(settings: Settings, clock: Callable[[], float] = time.time) -> Stores:
    """The stores on the database the settings name (DATABASE_URL, else embedded SQLite)."""
    return Stores.on(Database.from_settings(settings), media_secret(settings), clock)


def media_secret(settings: Settings) -> bytes:
    """The key of media URL tokens: the deployment secret, else one for this process only."""
    if settings.has_secret("PALABRE_SECRET") or settings.dev:
        return settings.secret("PALABRE_SECRET")
    return secrets.token_bytes(32)
