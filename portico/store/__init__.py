"""Persistence: one SQLAlchemy (async) store for SQLite and PostgreSQL."""

from portico.store.db import AssetRow, ConflictError, Store, StoreTransaction, normalize_db_url

__all__ = ["AssetRow", "ConflictError", "Store", "StoreTransaction", "normalize_db_url"]
