"""Relational schema. Assets are typed documents keyed by (kind, id); the
columns beside the body exist for lookups and the optimistic version check."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

assets = Table(
    "assets",
    metadata,
    Column("kind", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("name", String(512), nullable=True),
    Column("version", String(128), nullable=True),
    Column("body", JSON, nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_assets_kind_name", "kind", "name"),
)

# One row; its counter moves with every committed configuration change so that
# every gateway node sharing the database notices the change and reloads.
config_state = Table(
    "config_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)


def _subject_columns() -> list[Column[str]]:
    """Who an event is about: columns of both ``transaction_events`` and ``event_subjects``."""
    return [
        Column("api_id", String(128), nullable=True),
        Column("api_name", String(512), nullable=True),
        Column("api_version", String(128), nullable=True),
        Column("application_id", String(128), nullable=True),
        Column("application_name", String(512), nullable=True),
        Column("package_id", String(128), nullable=True),
        Column("plan_id", String(128), nullable=True),
    ]


transaction_events = Table(
    "transaction_events",
    metadata,
    Column("id", String(64), nullable=False),
    Column("creation_date", BigInteger, nullable=False),
    *_subject_columns(),
    Column("status", String(32), nullable=True),
    Column("response_code", Integer, nullable=True),
    Column("correlation_id", String(128), nullable=True),
    Column("body", Text, nullable=False),
    # The time only: every query has a time range, and each index more costs every gateway call
    # (migration 0008). ``id`` has none either: nothing looks an event up by it (migration 0011).
    Index("ix_events_date", "creation_date"),
)

# Who an event is about: the API, application, package and plan columns of ``transaction_events``,
# stored once per combination. The event writer binds a row's key instead of these seven values and
# the insert copies them from here (migration 0010): binding a text value cost SQLite more than
# the rest of the row. ``key`` is a hash of the values (``events.calls.subject_key``), the same in
# every process, so nodes need no coordination to add one.
event_subjects = Table(
    "event_subjects",
    metadata,
    Column("key", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    *_subject_columns(),
)

# Column lists of the event writer's own insert statements (events/recorder.py for PostgreSQL,
# events/sqlite_sink.py for SQLite): the table's columns in order, and the subject's values as
# selected from ``event_subjects`` aliased ``s``.
EVENT_COLUMNS = ", ".join(c.name for c in transaction_events.c)
SUBJECT_COLUMNS = tuple(c.name for c in event_subjects.c if c.name != "key")
SUBJECT_VALUES_OF_S = ", ".join(f"s.{c}" for c in SUBJECT_COLUMNS)

# Counters that must survive a restart (quotas): persisted periodically, restored on start.
quota_counters = Table(
    "quota_counters",
    metadata,
    Column("key", String(256), primary_key=True),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Runtime events other than transactions (monitor, policy violation, error, lifecycle, ...).
gateway_events = Table(
    "gateway_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("creation_date", BigInteger, nullable=False),
    Column("api_id", String(128), nullable=True),
    Column("application_id", String(128), nullable=True),
    Column("body", Text, nullable=False),
    Index("ix_gateway_events_type_date", "event_type", "creation_date"),
)

# Purge jobs of stored runtime data (``DELETE /apitransactions``, events/purge.py): one row per job,
# run by the node that accepted it; ``body`` holds its parameters and, once ended, what it removed.
event_jobs = Table(
    "event_jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("action", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("creation_date", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

# Audit log (issue 4): who changed what, when and from where. Written by portico.audit.recorder on
# the connection directly: audit rows are not configuration and do not move config_state.revision.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("creation_date", BigInteger, nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object", String(512), nullable=False),
    Column("message", Text, nullable=False),
    Column("user", String(256), nullable=False),
    Column("source_machine", String(256), nullable=False),
    Column("client_ip", String(64), nullable=False),
    Index("ix_audit_log_date", "creation_date"),
    Index("ix_audit_log_type_date", "object_type", "creation_date"),
)

# Federation (issue 6): one row per live agent link (refreshed by the node holding it at each
# HEALTH_CHECK; a row whose heartbeat is older than ~90 s reads as gone), and per integration its
# last discovery, ingestion and provider error. Written outside configuration transactions.
integration_links = Table(
    "integration_links",
    metadata,
    Column("link_id", String(64), primary_key=True),
    Column("integration_id", String(128), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column("agent_version", String(64), nullable=False),
    Column("remote", String(256), nullable=False),
    Column("is_primary", Boolean, nullable=False),
    Column("connected_at", BigInteger, nullable=False),
    Column("last_heartbeat", BigInteger, nullable=False),
    Column("detail", Text, nullable=True),
    Index("ix_integration_links_integration", "integration_id"),
)

integration_status = Table(
    "integration_status",
    metadata,
    Column("integration_id", String(128), primary_key=True),
    Column("last_discovery_at", BigInteger, nullable=True),
    Column("discovery", JSON, nullable=True),
    Column("last_ingest_at", BigInteger, nullable=True),
    Column("ingest", JSON, nullable=True),
    Column("last_provider_error", Text, nullable=True),
    Column("last_provider_error_at", BigInteger, nullable=True),
    # the last agent link, kept after its row in integration_links goes (migration 0006)
    Column("agent_version", String(64), nullable=True),
    Column("last_heartbeat", BigInteger, nullable=True),
    Column("last_connected_at", BigInteger, nullable=True),
    Column("last_disconnected_at", BigInteger, nullable=True),
)

# OAuth2 (issue 5): tokens and authorization codes of the local authorization server, stored as
# SHA-256 digests of the secrets; written outside configuration transactions (portico/oauth/tokens.py).
oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("access_hash", String(64), nullable=False, unique=True),
    Column("refresh_hash", String(64), nullable=True, unique=True),
    Column("auth_server", String(128), nullable=False),
    Column("client_id", String(256), nullable=False),
    Column("owner_id", String(256), nullable=False),
    Column("scope", Text, nullable=False),
    Column("grant_type", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),  # None: never expires (accessTokenExpInterval -1)
    Column("refresh_remaining", Integer, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("refresh_expires_at", BigInteger, nullable=True),  # None: no limit (migration 0007)
    Index("ix_oauth_tokens_client", "client_id"),
    Index("ix_oauth_tokens_expires", "expires_at"),
)

# Refresh tokens already rotated out (digests), kept so a replay revokes the grant (migration 0007).
oauth_refresh_used = Table(
    "oauth_refresh_used",
    metadata,
    Column("refresh_hash", String(64), primary_key=True),
    Column("token_id", String(64), nullable=False),
    Column("used_at", BigInteger, nullable=False),
    Index("ix_oauth_refresh_used_token", "token_id"),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(256), nullable=False),
    Column("owner_id", String(256), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("challenge", String(256), nullable=True),
    Column("challenge_method", String(16), nullable=True),
    Column("nonce", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
