"""The tables of Palabre's durable records, as SQLAlchemy Core.

Times are Unix epoch seconds (floats). Contacts are keyed hashes in every table but
`contact_addresses`, whose `value` is the address itself: the outbox needs it to send.
The migrations in `migrations/versions/` create exactly these tables; a change here needs
a new revision there (`alembic revision --autogenerate` compares the two).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
    }
)

# Keys registered once per namespace, such as the UIC registry's keyed hashes. `claim` is
# the idempotency key of the turn that registered it (a retried turn finds its own key new).
registry = Table(
    "registry",
    metadata,
    Column("namespace", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("claim", Text),
)

# Images Palabre serves itself behind signed, expiring URLs (QR codes).
media = Table(
    "media",
    metadata,
    Column("id", Text, primary_key=True),
    Column("content_type", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("expires_at", Double, nullable=False),
    Index("ix_media_expires_at", "expires_at"),
)

# The message log: each outbound message's provider id and delivery status.
messages = Table(
    "messages",
    metadata,
    Column("provider_id", Text, primary_key=True),
    Column("channel", Text, nullable=False),
    Column("contact_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("error_code", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# Consent, append-only: each row is one event (a keyword, a flow step, an import, the API,
# an agent, a provider's signal); the current state of a contact x channel x purpose is
# its latest event (palabre.stores.consent). `event_key` makes a redelivered event once.
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_key", Text, nullable=False),
    Column("contact_key", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("granted", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("detail", Text),
    Column("at", Double, nullable=False),
    UniqueConstraint("event_key", name="uq_consent_events_event_key"),
    Index("ix_consent_events_contact_key", "contact_key", "purpose", "id"),
)

# Contacts whose data was erased (`palabre contacts erase`): the tombstone, under the
# keyed hash only, so that an audit can tell an erased contact from one never seen.
erasures = Table(
    "erasures",
    metadata,
    Column("contact_key", Text, primary_key=True),
    Column("at", Double, nullable=False),
)

# A durable queue of plugin background work (DHIS-2 registrations waiting for the server).
tasks = Table(
    "tasks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Double, nullable=False),
    Column("last_error", Text),
    Column("created_at", Double, nullable=False),
    Index("ix_tasks_kind_next_attempt_at", "kind", "next_attempt_at"),
)

# A person Palabre talks to, whatever address they write from.
contacts = Table(
    "contacts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("language", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# The addresses of a contact (tel:, whatsapp:, a Meta user id), keyed by their keyed hash.
contact_addresses = Table(
    "contact_addresses",
    metadata,
    Column("key", Text, primary_key=True),
    Column(
        "contact_id",
        Text,
        ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("scheme", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Index("ix_contact_addresses_contact_id", "contact_id"),
)

# The outbox: every outbound message is a row before it leaves, and stays as its log.
# `id` gives the global order (a contact's messages leave in `id` order); `uid` is the
# message's own id; `payload` (JSON: text, language, options, image) and `address` are what
# the transport needs to send. `send_started_at` is set, and committed, just before the
# transport is called: a lapsed claim with it set may have gone out (see palabre.outbox).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("contact_key", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("purpose", Text, nullable=False, server_default="service"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Double, nullable=False),
    Column("expires_at", Double),
    Column("last_error", Text),
    Column("error_code", Text),
    Column("provider_id", Text),
    Column("inbound_key", Text),
    Column("claimed_by", Text),
    Column("claimed_until", Double),
    Column("send_started_at", Double),
    Column("broadcast_id", Text),
    Column("gave_up", Integer),  # 1: failed on retryable errors only, out of attempts
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("uid", name="uq_outbox_uid"),
    UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    Index("ix_outbox_status_priority", "status", "priority", "id"),
    Index("ix_outbox_contact_key", "contact_key", "id"),
    Index("ix_outbox_provider_id", "provider_id"),
    Index("ix_outbox_inbound_key", "inbound_key"),
    Index("ix_outbox_broadcast_id", "broadcast_id", "status"),
)

# A broadcast (`palabre broadcast`): one flow started for an audience read from a CSV.
# `params` (JSON) are the command's `--param`s; `source` is the CSV's file name, no path.
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("flow", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("transport", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),  # of the flow, file and parameters
    Column("recipients", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("queued_at", Double),  # when its last recipient was started
    Index("ix_broadcasts_fingerprint", "fingerprint"),
)

# Its audience, snapshotted once: one row per CSV line. `skip` says why a line is not sent
# (invalid, duplicate, no_consent). The address, language and per-row parameters are held
# only until the line's flow is started (its messages are then outbox rows): `started_at`.
broadcast_recipients = Table(
    "broadcast_recipients",
    metadata,
    Column("broadcast_id", Text, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("contact_key", Text),
    Column("address", Text, nullable=False),
    Column("language", Text),
    Column("params", Text, nullable=False),
    Column("skip", Text),
    Column("detail", Text),
    Column("started_at", Double),
    Index("ix_broadcast_recipients_contact_key", "contact_key"),
)

# Keys to the events API (`palabre apikey create NAME`): only a keyed hash of each key is
# kept (palabre.api.keys), found by that hash; a revoked key stays, to say so.
api_keys = Table(
    "api_keys",
    metadata,
    Column("name", Text, primary_key=True),
    Column("digest", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double),
    UniqueConstraint("digest", name="uq_api_keys_digest"),
)

# Each event a key sent (POST /api/v1/events), by the caller's id, and its way through the
# starters (palabre.api.queue): the same (key, id) again finds it and starts nothing.
# `digest` tells a replay from another event under a reused id; `request` (the event as
# canonical JSON: name, address, language, data, ttl) is kept until the flows ran, and
# `messages` (their outbox uids, JSON) after.
api_events = Table(
    "api_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_name", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("contact_key", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("expires_at", Double),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("messages", Text),
    Column("error", Text),
    Column("claimed_by", Text),
    Column("claimed_until", Double),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("key_name", "event_id", name="uq_api_events_key_name"),
    Index("ix_api_events_status", "status", "id"),
    Index("ix_api_events_contact_key", "contact_key", "id"),
    Index("ix_api_events_created_at", "created_at"),
)

# WhatsApp's customer service window: when each WhatsApp contact last wrote to each
# business number (by the transport, which sends from one). Free text may reach them for 24
# hours after; later, only an approved template (palabre.outbox.windows).
whatsapp_windows = Table(
    "whatsapp_windows",
    metadata,
    Column("contact_key", Text, primary_key=True),
    Column("transport", Text, primary_key=True),
    Column("last_inbound_at", Double, nullable=False),
)
