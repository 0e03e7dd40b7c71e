"""Federation: the live state of agent links and each integration's last discovery and provider error.

Written outside configuration transactions (heartbeats must not move config_state.revision).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "integration_links",
        sa.Column("link_id", sa.String(64), primary_key=True),
        sa.Column("integration_id", sa.String(128), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("remote", sa.String(256), nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("connected_at", sa.BigInteger, nullable=False),
        sa.Column("last_heartbeat", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_integration_links_integration", "integration_links", ["integration_id"])
    op.create_table(
        "integration_status",
        sa.Column("integration_id", sa.String(128), primary_key=True),
        sa.Column("last_discovery_at", sa.BigInteger, nullable=True),
        sa.Column("discovery", sa.JSON, nullable=True),
        sa.Column("last_ingest_at", sa.BigInteger, nullable=True),
        sa.Column("ingest", sa.JSON, nullable=True),
        sa.Column("last_provider_error", sa.Text, nullable=True),
        sa.Column("last_provider_error_at", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("integration_status")
    op.drop_table("integration_links")
