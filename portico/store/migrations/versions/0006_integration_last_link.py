"""Federation: an integration's last agent link outlives the link's row (issue 6 review).

The status keeps the agent version, last heartbeat and the times of the last connection and
disconnection after the link closes, so a DISCONNECTED integration still says when its agent was
last seen.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("integration_status") as batch:
        batch.add_column(sa.Column("agent_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("last_heartbeat", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("last_connected_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("last_disconnected_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("integration_status") as batch:
        for name in ("last_disconnected_at", "last_connected_at", "last_heartbeat", "agent_version"):
            batch.drop_column(name)
