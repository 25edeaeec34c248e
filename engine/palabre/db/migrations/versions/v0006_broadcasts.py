"""Broadcasts: the broadcast, its audience snapshotted line by line, the broadcast each
outbox row belongs to, and whether a failed row failed on retryable errors only.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("transport", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("queued_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_broadcasts"),
    )
    op.create_index("ix_broadcasts_fingerprint", "broadcasts", ["fingerprint"])
    op.create_table(
        "broadcast_recipients",
        sa.Column("broadcast_id", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("contact_key", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("skip", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("broadcast_id", "line", name="pk_broadcast_recipients"),
    )
    op.create_index("ix_broadcast_recipients_contact_key", "broadcast_recipients", ["contact_key"])
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("broadcast_id", sa.Text(), nullable=True))
        outbox.add_column(sa.Column("gave_up", sa.Integer(), nullable=True))
        outbox.create_index("ix_outbox_broadcast_id", ["broadcast_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_index("ix_outbox_broadcast_id")
        outbox.drop_column("gave_up")
        outbox.drop_column("broadcast_id")
    op.drop_index("ix_broadcast_recipients_contact_key", table_name="broadcast_recipients")
    op.drop_table("broadcast_recipients")
    op.drop_index("ix_broadcasts_fingerprint", table_name="broadcasts")
    op.drop_table("broadcasts")
