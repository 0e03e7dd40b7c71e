"""Audit log: one row per recorded management action, login or logout.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("creation_date", sa.BigInteger, nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object", sa.String(512), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("source_machine", sa.String(256), nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_date", "audit_log", ["creation_date"])
    op.create_index("ix_audit_log_type_date", "audit_log", ["object_type", "creation_date"])


def downgrade() -> None:
    op.drop_table("audit_log")
