"""Consent: an append-only ledger of consent events, the purpose of each outbox row, and
the tombstones of erased contacts.

The opt-outs recorded so far (`opt_outs`, from Twilio's 21610) become withdrawals of
both purposes on every channel, from the provider, so nothing once refused is sent.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_key", sa.Text(), nullable=False),
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_events"),
        sa.UniqueConstraint("event_key", name="uq_consent_events_event_key"),
    )
    op.create_index(
        "ix_consent_events_contact_key", "consent_events", ["contact_key", "purpose", "id"]
    )
    op.create_table(
        "erasures",
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("contact_key", name="pk_erasures"),
    )
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("purpose", sa.Text(), server_default="service", nullable=False))
    for purpose in ("service", "broadcast"):
        op.execute(
            "INSERT INTO consent_events "
            "(event_key, contact_key, channel, purpose, granted, source, detail, at) "
            f"SELECT 'opt_out:{purpose}:' || contact_key, contact_key, '*', '{purpose}', 0, "
            "'provider', reason, at FROM opt_outs"
        )
    op.drop_table("opt_outs")


def downgrade() -> None:
    op.create_table(
        "opt_outs",
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("contact_key", name="pk_opt_outs"),
    )
    op.execute(
        "INSERT INTO opt_outs (contact_key, reason, at) "
        "SELECT contact_key, MAX(COALESCE(detail, 'withdrawn')), MAX(at) FROM consent_events "
        "WHERE purpose = 'service' AND granted = 0 GROUP BY contact_key"
    )
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_column("purpose")
    op.drop_table("erasures")
    op.drop_index("ix_consent_events_contact_key", table_name="consent_events")
    op.drop_table("consent_events")
