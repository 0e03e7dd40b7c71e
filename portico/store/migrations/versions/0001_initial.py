"""Initial schema: assets, configuration revision, transaction events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(512), nullable=True),
        sa.Column("version", sa.String(128), nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_assets_kind_name", "assets", ["kind", "name"])
    op.create_table(
        "config_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO config_state (id, revision) VALUES (1, 1)")
    op.create_table(
        "transaction_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("creation_date", sa.BigInteger, nullable=False),
        sa.Column("api_id", sa.String(128), nullable=True),
        sa.Column("api_name", sa.String(512), nullable=True),
        sa.Column("api_version", sa.String(128), nullable=True),
        sa.Column("application_id", sa.String(128), nullable=True),
        sa.Column("application_name", sa.String(512), nullable=True),
        sa.Column("package_id", sa.String(128), nullable=True),
        sa.Column("plan_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("response_code", sa.Integer, nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_events_date", "transaction_events", ["creation_date"])
    op.create_index("ix_events_api", "transaction_events", ["api_id", "creation_date"])
    op.create_index("ix_events_app", "transaction_events", ["application_id", "creation_date"])


def downgrade() -> None:
    op.drop_table("transaction_events")
    op.drop_table("config_state")
    op.drop_table("assets")
