"""``event_subjects``: the API, application, package and plan of events, stored once per combination.

The event writer binds a subject's key per row and the insert copies the seven values from this
table (``INSERT ... SELECT ... JOIN event_subjects``): binding text values was most of SQLite's cost
per event. ``transaction_events`` keeps its columns, so readers are unchanged. A key is a hash of
the values (``portico.events.calls.subject_key``); rows are added as new combinations appear.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "event_subjects",
        sa.Column("key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
        sa.Column("api_id", sa.String(128), nullable=True),
        sa.Column("api_name", sa.String(512), nullable=True),
        sa.Column("api_version", sa.String(128), nullable=True),
        sa.Column("application_id", sa.String(128), nullable=True),
        sa.Column("application_name", sa.String(512), nullable=True),
        sa.Column("package_id", sa.String(128), nullable=True),
        sa.Column("plan_id", sa.String(128), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("event_subjects")
