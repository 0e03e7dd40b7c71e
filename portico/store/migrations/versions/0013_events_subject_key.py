"""Transaction events refer to their subject by key instead of copying it.

The event writers store the ``event_subjects`` key of an event in ``subject_key`` and leave the
seven subject columns empty: the copies made each row about 60 bytes larger, and the insert of a
row about a sixth dearer. Rows written before keep their copies; readers take a row's own values
where it has them. Downgrading copies the subjects back into the rows that refer to one.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

_SUBJECT = ("api_id", "api_name", "api_version", "application_id", "application_name", "package_id", "plan_id")


def upgrade() -> None:
    op.add_column("transaction_events", sa.Column("subject_key", sa.BigInteger, nullable=True))


def downgrade() -> None:
    copies = ", ".join(f"{c} = (SELECT s.{c} FROM event_subjects AS s WHERE s.key = subject_key)"
                       for c in _SUBJECT)
    op.execute(f"UPDATE transaction_events SET {copies} WHERE subject_key IS NOT NULL")
    with op.batch_alter_table("transaction_events") as batch:
        batch.drop_column("subject_key")
