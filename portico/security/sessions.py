"""Management sessions: the cookie a password login gets from ``POST /users/authenticate``.

A session is 256 random bits, sent to the client as the cookie :data:`COOKIE` (HttpOnly,
SameSite=Strict, Path=/rest) and stored only as its SHA-256 digest (the row's id, so a lookup is
one primary-key read), with its user, creation time and last use. It ends after an idle time without
use, after a maximum lifetime in any case (:class:`Limits`, from the extended settings
``sessionIdleTimeoutMinutes`` / ``sessionMaxLifetimeHours``), at logout, when its user's password
changes, and when the user is deleted.

Session rows are written without moving the configuration revision (the gateway never reads them),
like the login-state rows and personal access tokens; the last use is written at most once a
:data:`TOUCH_MS`, so a busy console does not write on every call."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from portico.store import ConflictError, Store, StoreTransaction

KIND = "managementSession"
COOKIE = "portico_session"
COOKIE_PATH = "/rest"
IDLE_SETTING = "sessionIdleTimeoutMinutes"
LIFETIME_SETTING = "sessionMaxLifetimeHours"
DEFAULT_IDLE_MINUTES = 30
DEFAULT_LIFETIME_HOURS = 12
TOUCH_MS = 60_000
MAX_PER_USER = 20
_SECRET = re.compile(r"^[A-Za-z0-9_-]{40,64}$")


@dataclass(frozen=True, slots=True)
class Limits:
    idle_ms: int = DEFAULT_IDLE_MINUTES * 60_000
    lifetime_ms: int = DEFAULT_LIFETIME_HOURS * 3_600_000

    @classmethod
    def from_settings(cls, idle_minutes: str, lifetime_hours: str) -> Limits:
        """From the extended settings' strings; a missing, malformed or non-positive value keeps its default."""
        def number(text: str, default: float) -> float:
            try:
                value = float(text)
            except ValueError:
                return default
            return value if 0 < value < 1e7 else default

        return cls(int(number(idle_minutes, DEFAULT_IDLE_MINUTES) * 60_000),
                   int(number(lifetime_hours, DEFAULT_LIFETIME_HOURS) * 3_600_000))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str          # the digest of the secret
    user_id: str
    created: int
    last_seen: int

    def ended(self, now_ms: int, limits: Limits) -> str | None:
        """Why the session is over at ``now_ms`` (idle or too old), or None while it lasts."""
        if now_ms - self.created >= limits.lifetime_ms:
            return "the session reached its maximum lifetime"
        if now_ms - self.last_seen >= limits.idle_ms:
            return "the session was idle too long"
        return None

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "userId": self.user_id, "created": self.created, "lastSeen": self.last_seen}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SessionRecord:
        created = int(body.get("created", 0))
        return cls(str(body["id"]), str(body["userId"]), created, int(body.get("lastSeen", created)))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(value: str) -> bool:
    return bool(_SECRET.match(value))


@asynccontextmanager
async def _quiet(store: Store) -> AsyncIterator[StoreTransaction]:
    async with store.transaction() as tx:
        yield tx
        tx.changed = False


async def of_user(tx: StoreTransaction, user_id: str) -> list[SessionRecord]:
    return [SessionRecord.from_body(r.body) for r in await tx.list(KIND) if r.body.get("userId") == user_id]


async def start(store: Store, user_id: str, now_ms: int, limits: Limits) -> str:
    """A new session of ``user_id``; returns the secret (the cookie's value). The user's ended
    sessions are dropped, and the oldest ones beyond :data:`MAX_PER_USER`."""
    secret = secrets.token_urlsafe(32)
    record = SessionRecord(digest(secret), user_id, now_ms, now_ms)
    async with _quiet(store) as tx:
        mine = sorted(await of_user(tx, user_id), key=lambda s: s.created)
        live = [s for s in mine if s.ended(now_ms, limits) is None]
        for old in [s for s in mine if s not in live] + live[: max(0, len(live) - MAX_PER_USER + 1)]:
            await tx.delete(KIND, old.id)
        await tx.insert(KIND, record.id, record.body())
    return secret


async def find(tx: StoreTransaction, secret: str) -> SessionRecord | None:
    if not looks_like_secret(secret):
        return None
    row = await tx.get(KIND, digest(secret))
    return SessionRecord.from_body(row.body) if row else None


async def touch(store: Store, record: SessionRecord, now_ms: int) -> None:
    """Note a use (only when the last noted one is older than :data:`TOUCH_MS`)."""
    if now_ms - record.last_seen < TOUCH_MS:
        return
    try:
        async with _quiet(store) as tx:
            row = await tx.get(KIND, record.id)
            if row is not None:
                await tx.update(KIND, record.id, {**row.body, "lastSeen": now_ms}, row.revision)
    except ConflictError:
        pass   # a concurrent request of the same session noted its use first


async def end(store: Store, session_id: str) -> None:
    async with _quiet(store) as tx:
        await tx.delete(KIND, session_id)


async def end_all_in(tx: StoreTransaction, user_id: str, keep: str | None = None) -> None:
    """End every session of ``user_id`` but ``keep``, in a transaction the caller holds."""
    for record in await of_user(tx, user_id):
        if record.id != keep:
            await tx.delete(KIND, record.id)
