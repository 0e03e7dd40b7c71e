"""Transaction events keep one secondary index, on the time (``ix_events_date``).

Every gateway call inserts an event row, and an insert's cost is mostly the index pages it
dirties. ``ix_events_app`` (application, time) took its inserts at as many places as there are
calling applications, so a batch of 5,000 rows dirtied a page per application: with it and
``ix_events_api``, an event cost about four times the CPU of the row alone (14.5 us against 4 us
per row on SQLite, 1,000 applications). Every event query has a time range, so filters on API or
application scan that range instead.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.drop_index("ix_events_api", table_name="transaction_events")
    op.drop_index("ix_events_app", table_name="transaction_events")


def downgrade() -> None:
    op.create_index("ix_events_app", "transaction_events", ["application_id", "creation_date"])
    op.create_index("ix_events_api", "transaction_events", ["api_id", "creation_date"])
