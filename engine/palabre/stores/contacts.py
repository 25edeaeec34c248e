"""Contacts: a stable id per person, found from any of their addresses.

An address is known by its keyed hash (`address_key`), which is the table's key; its
scheme (`tel`, `whatsapp`, `meta`) and value are kept so that the outbox can reach it.
Parsing and formatting addresses is `palabre.addresses`' job, not this store's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from sqlalchemy import insert, select, update

from palabre.db.database import Database
from palabre.db.inserts import insert_new
from palabre.db.schema import contact_addresses, contacts


class _AddressTaken(Exception):
    """Another worker gave the address a contact first: roll the new contact back."""


class ContactStore:
    """Resolves addresses to contact ids, creating a contact on first sight, atomically."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock

    async def resolve(self, address_key: str, scheme: str, value: str) -> str:
        """The id of the contact at this address; a new contact the first time it is seen.

        Two workers resolving one new address at once get one contact: the address row is
        inserted only if absent, and the loser's new contact is rolled back.
        """
        found = await self._contact_at(address_key)
        if found is not None:
            return found
        try:
            return await self._create(address_key, scheme, value)
        except _AddressTaken:
            taken = await self._contact_at(address_key)
            assert taken is not None, "the address row that won cannot vanish"
            return taken

    async def _create(self, address_key: str, scheme: str, value: str) -> str:
        contact_id, now = uuid.uuid4().hex, self._clock()
        address = {"key": address_key, "scheme": scheme, "value": value, "created_at": now}
        async with self._db.write() as conn:
            await conn.execute(
                insert(contacts).values(id=contact_id, created_at=now, updated_at=now)
            )
            statement = insert_new(self._db.dialect, contact_addresses)
            added = await conn.execute(statement, {**address, "contact_id": contact_id})
            if added.first() is None:
                raise _AddressTaken
        return contact_id

    async def _contact_at(self, address_key: str) -> str | None:
        query = select(contact_addresses.c.contact_id).where(contact_addresses.c.key == address_key)
        async with self._db.read() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def language(self, contact_id: str) -> str | None:
        """The contact's language, or None when it was never set (or no such contact)."""
        query = select(contacts.c.language).where(contacts.c.id == contact_id)
        async with self._db.read() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def set_language(self, contact_id: str, language: str) -> None:
        """Remember the contact's language."""
        statement = (
            update(contacts)
            .where(contacts.c.id == contact_id)
            .values(language=language, updated_at=self._clock())
        )
        async with self._db.write() as conn:
            await conn.execute(statement)
