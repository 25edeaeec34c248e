"""Durable records: registry, media, message log and opt-outs, tasks.

They were separate SQLite files before (registry.db, media.db, messages.db,
dhis2-queue.db); nothing is copied from them.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry",
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name="pk_registry"),
    )
    op.create_table(
        "media",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
    )
    op.create_index("ix_media_expires_at", "media", ["expires_at"])
    op.create_table(
        "messages",
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("provider_id", name="pk_messages"),
    )
    op.create_table(
        "opt_outs",
        sa.Column("contact_key", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("contact_key", name="pk_opt_outs"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_kind_next_attempt_at", "tasks", ["kind", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_kind_next_attempt_at", table_name="tasks")
    op.drop_table("tasks")
    op.drop_table("opt_outs")
    op.drop_table("messages")
    op.drop_index("ix_media_expires_at", table_name="media")
    op.drop_table("media")
    op.drop_table("registry")
