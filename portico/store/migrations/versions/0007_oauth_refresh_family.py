"""OAuth2 refresh tokens expire, and a rotated-out refresh token is remembered (issue 5 review).

``oauth_tokens.refresh_expires_at``: when the grant's current refresh token stops working (None: no
limit). ``oauth_refresh_used``: digests of refresh tokens already rotated out, with their grant, so
a replayed one revokes the whole grant (RFC 9700 4.14.2, refresh token rotation).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("oauth_tokens") as batch:
        batch.add_column(sa.Column("refresh_expires_at", sa.BigInteger, nullable=True))
    op.create_table(
        "oauth_refresh_used",
        sa.Column("refresh_hash", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_oauth_refresh_used_token", "oauth_refresh_used", ["token_id"])


def downgrade() -> None:
    op.drop_table("oauth_refresh_used")
    with op.batch_alter_table("oauth_tokens") as batch:
        batch.drop_column("refresh_expires_at")
