"""Run Alembic migrations on a live connection (called from Store.migrate)."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"

# Alembic's ``context`` and ``op`` are module-level proxies, set for the migration that runs: two
# migrations of one process at once (stores of different databases started together) overwrote
# each other's, and one ran its steps on the other's connection or failed halfway. Each event
# loop lets its migrations run one at a time.
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def migration_turn() -> asyncio.Lock:
    """The lock a migration of this process holds while it runs (one per event loop)."""
    loop = asyncio.get_running_loop()
    lock = _turns.get(loop)
    if lock is None:
        lock = _turns[loop] = asyncio.Lock()
    return lock


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_to_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
