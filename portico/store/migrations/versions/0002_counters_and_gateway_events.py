"""Quota counters that survive restarts; runtime events other than transactions.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "quota_counters",
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "gateway_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("creation_date", sa.BigInteger, nullable=False),
        sa.Column("api_id", sa.String(128), nullable=True),
        sa.Column("application_id", sa.String(128), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_gateway_events_type_date", "gateway_events", ["event_type", "creation_date"])


def downgrade() -> None:
    op.drop_table("gateway_events")
    op.drop_table("quota_counters")
