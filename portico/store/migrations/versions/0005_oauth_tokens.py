"""OAuth2 tokens and authorization codes of the local authorization server (issue 5).

Secrets are stored only as SHA-256 digests. Written outside configuration transactions: issuing a
token must not move config_state.revision (that would rebuild every node's gateway snapshot).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "oauth_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("access_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("refresh_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("auth_server", sa.String(128), nullable=False),
        sa.Column("client_id", sa.String(256), nullable=False),
        sa.Column("owner_id", sa.String(256), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("grant_type", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("refresh_remaining", sa.Integer, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_oauth_tokens_client", "oauth_tokens", ["client_id"])
    op.create_index("ix_oauth_tokens_expires", "oauth_tokens", ["expires_at"])
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(256), nullable=False),
        sa.Column("owner_id", sa.String(256), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("challenge", sa.String(256), nullable=True),
        sa.Column("challenge_method", sa.String(16), nullable=True),
        sa.Column("nonce", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("oauth_codes")
    op.drop_table("oauth_tokens")
