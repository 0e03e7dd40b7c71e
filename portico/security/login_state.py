"""Failed logins, account locks, and the login settings documents.

Lock state is kept per user in rows of kind ``loginState`` (id = user id). The gateway never reads
them, so their writes do not move the configuration revision: a burst of wrong passwords must not
make every node rebuild its snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from portico.domain.password_policy import AccountLockSettings, PasswordExpiry, PasswordRestrictions
from portico.domain.users import is_predefined, login_of
from portico.store import ConflictError, Store, StoreTransaction
from portico.store.db import AssetRow, now_ms

KIND = "loginState"
SETTINGS_KIND = "settings"   # the ids are the documents' NAMEs (passwordRestrictions, ...)

D = TypeVar("D", PasswordRestrictions, PasswordExpiry, AccountLockSettings)


async def load_settings(tx: StoreTransaction, cls: type[D]) -> D:
    row = await tx.get(SETTINGS_KIND, cls.NAME)
    result: D = cls.from_store(row.body if row else None)
    return result


@asynccontextmanager
async def _quiet(store: Store) -> AsyncIterator[StoreTransaction]:
    """A write transaction that leaves the configuration revision alone (see the module doc)."""
    async with store.transaction() as tx:
        yield tx
        tx.changed = False


def locked_until(state: dict[str, Any] | None, now: int) -> int | None:
    until = (state or {}).get("lockedUntil")
    return until if isinstance(until, int) and until > now else None


async def state_of(tx: StoreTransaction, user_id: str) -> dict[str, Any] | None:
    row = await tx.get(KIND, user_id)
    return row.body if row else None


async def record_failure(store: Store, user_id: str, login_id: str, settings: AccountLockSettings) -> bool:
    """Count one failed login; True when this failure locks the account."""
    for _ in range(5):
        now = now_ms()
        try:
            async with _quiet(store) as tx:
                row = await tx.get(KIND, user_id)
                body = dict(row.body) if row else {}
                if locked_until(body, now):
                    return False
                recent = [t for t in body.get("failures", []) if isinstance(t, int) and t > now - settings.window_ms]
                recent.append(now)
                locks = len(recent) >= settings.maximumLoginAttempts
                body = {"loginId": login_id, "failures": [] if locks else recent,
                        "lockedUntil": now + settings.block_ms if locks else None}
                if row is None:
                    await tx.insert(KIND, user_id, body, name=login_id)
                else:
                    await tx.update(KIND, user_id, body, row.revision, name=login_id)
                return locks
        except ConflictError:
            continue   # a concurrent failure for the same user won; count again on its result
    return False


async def clear(store: Store, user_ids: Iterable[str]) -> None:
    """Forget failures and locks (a successful login, an unlock, a deleted user)."""
    async with _quiet(store) as tx:
        for user_id in user_ids:
            await tx.delete(KIND, user_id)


async def clear_in(tx: StoreTransaction, user_id: str) -> None:
    """``clear`` inside a transaction the caller already holds."""
    await tx.delete(KIND, user_id)


async def locked_logins(tx: StoreTransaction, settings: AccountLockSettings,
                        users: Iterable[AssetRow]) -> dict[str, str]:
    """Login id -> user id of the ``users`` whose accounts are locked now (as the settings apply
    them). The login id is the user's of now: a state row keeps the one of its last failure."""
    if not settings.isEnabled:
        return {}
    now = now_ms()
    locked = {r.id for r in await tx.list(KIND) if locked_until(r.body, now)}
    return {login_of(u): u.id for u in users
            if u.id in locked and settings.applies_to(is_predefined(u))}
