"""Registry claims: which turn registered a key, so a retried turn finds its own key new.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registry") as batch:
        batch.add_column(sa.Column("claim", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry") as batch:
        batch.drop_column("claim")
