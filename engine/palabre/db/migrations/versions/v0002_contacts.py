"""Contacts and their addresses (tel:, whatsapp:, Meta user ids), keyed by a keyed hash.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
    )
    op.create_table(
        "contact_addresses",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("scheme", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name="fk_contact_addresses_contact_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name="pk_contact_addresses"),
    )
    op.create_index("ix_contact_addresses_contact_id", "contact_addresses", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_addresses_contact_id", table_name="contact_addresses")
    op.drop_table("contact_addresses")
    op.drop_table("contacts")
