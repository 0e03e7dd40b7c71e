"""Persistence: one SQLAlchemy (async) store for SQLite and PostgreSQL."""

from portico.store.db import (
    STORE_BUSY,
    AssetRow,
    ConflictError,
    Store,
    StoreTransaction,
    normalize_db_url,
    store_busy,
)

__all__ = ["STORE_BUSY", "AssetRow", "ConflictError", "Store", "StoreTransaction", "normalize_db_url", "store_busy"]
