"""WhatsApp's 24-hour window is kept per business number: a contact who wrote to the
Twilio number has not opened the Meta number's window. The window rows gain the
transport they came through (each transport sends from one number).

A window recorded before this upgrade is kept for both built-in WhatsApp transports, as
it was read before; it lapses within 24 hours anyway.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BUILT_IN = ("meta_cloud", "twilio")


def upgrade() -> None:
    # Read, drop, create, refill: the primary key's name stays pk_whatsapp_windows.
    rows = op.get_bind().execute(
        sa.text("SELECT contact_key, last_inbound_at FROM whatsapp_windows")
    )
    kept = [tuple(row) for row in rows]
    op.drop_table("whatsapp_windows")
    table = op.create_table(
        "whatsapp_windows",
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("transport", sa.Text(), nullable=False),
        sa.Column("last_inbound_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("contact_key", "transport", name="pk_whatsapp_windows"),
    )
    values = [
        {"contact_key": key, "transport": transport, "last_inbound_at": at}
        for key, at in kept
        for transport in BUILT_IN
    ]
    if values:
        op.bulk_insert(table, values)


def downgrade() -> None:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT contact_key, MAX(last_inbound_at) FROM whatsapp_windows GROUP BY contact_key"
        )
    )
    kept = [tuple(row) for row in rows]
    op.drop_table("whatsapp_windows")
    table = op.create_table(
        "whatsapp_windows",
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("last_inbound_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("contact_key", name="pk_whatsapp_windows"),
    )
    if kept:
        op.bulk_insert(table, [{"contact_key": k, "last_inbound_at": at} for k, at in kept])
