"""The events API takes an event in one write and answers; starters (`palabre serve`,
`palabre worker`) run its flows after. The answers kept per (key, id) become a queue,
`api_events`, which also records what became of each event.

An event answered before this upgrade had run its flows: it is kept as `started`, with
its messages. A downgrade keeps the events whose flows ran, as answers; it refuses while
any event is still waiting for its flows, since the older code would never start it:
let a worker start them first.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    rows = op.get_bind().execute(
        sa.text("SELECT key_name, event_id, digest, answer, created_at FROM event_requests")
    )
    kept = [tuple(row) for row in rows]
    op.drop_index("ix_event_requests_created_at", table_name="event_requests")
    op.drop_table("event_requests")
    table = op.create_table(
        "api_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("messages", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_until", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_events"),
        sa.UniqueConstraint("key_name", "event_id", name="uq_api_events_key_name"),
    )
    op.create_index("ix_api_events_status", "api_events", ["status", "id"])
    op.create_index("ix_api_events_contact_key", "api_events", ["contact_key", "id"])
    op.create_index("ix_api_events_created_at", "api_events", ["created_at"])
    if kept:
        op.bulk_insert(table, [_started(*row) for row in kept])


def _started(key_name: str, event_id: str, digest: str, answer: str, at: float) -> dict:
    answered = json.loads(answer)
    return {
        "key_name": key_name,
        "event_id": event_id,
        "digest": digest,
        "event": answered.get("event", ""),
        "contact_key": "",  # not kept by the answers: no later event waits behind these
        "request": "{}",
        "status": "started",
        "attempts": 1,
        "messages": json.dumps(answered.get("messages", [])),
        "created_at": at,
        "updated_at": at,
    }


def downgrade() -> None:
    bind = op.get_bind()
    waiting = bind.execute(
        sa.text("SELECT COUNT(*) FROM api_events WHERE status IN ('queued', 'starting')")
    ).scalar()
    if waiting:
        raise RuntimeError(
            f"{waiting} events still wait for their flows: run `palabre worker` until "
            "none does, then downgrade"
        )
    rows = bind.execute(
        sa.text("SELECT key_name, event_id, digest, event, messages, created_at FROM api_events")
    )
    kept = [tuple(row) for row in rows]
    op.drop_index("ix_api_events_created_at", table_name="api_events")
    op.drop_index("ix_api_events_contact_key", table_name="api_events")
    op.drop_index("ix_api_events_status", table_name="api_events")
    op.drop_table("api_events")
    table = op.create_table(
        "event_requests",
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key_name", "event_id", name="pk_event_requests"),
    )
    op.create_index("ix_event_requests_created_at", "event_requests", ["created_at"])
    answers = [
        {
            "key_name": key_name,
            "event_id": event_id,
            "digest": digest,
            "answer": json.dumps(
                {"id": event_id, "event": event, "messages": json.loads(messages or "[]")}
            ),
            "created_at": at,
        }
        for key_name, event_id, digest, event, messages, at in kept
    ]
    if answers:
        op.bulk_insert(table, answers)
