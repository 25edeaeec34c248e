"""The events API: its keys (a keyed hash each) and the events received, by the caller's
id; and when each WhatsApp contact last wrote (the 24-hour window).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_api_keys"),
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
    )
    op.create_table(
        "event_requests",
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key_name", "event_id", name="pk_event_requests"),
    )
    op.create_index("ix_event_requests_created_at", "event_requests", ["created_at"])
    op.create_table(
        "whatsapp_windows",
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("last_inbound_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("contact_key", name="pk_whatsapp_windows"),
    )


def downgrade() -> None:
    op.drop_table("whatsapp_windows")
    op.drop_index("ix_event_requests_created_at", table_name="event_requests")
    op.drop_table("event_requests")
    op.drop_table("api_keys")
