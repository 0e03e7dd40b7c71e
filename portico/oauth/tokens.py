"""Access tokens, refresh tokens and authorization codes issued by the local authorization server.

Only SHA-256 digests of the secrets are stored (``oauth_tokens``, ``oauth_codes``), on the store's
engine directly: issuing a token is not a configuration change. One row is one grant: its access
token and, when the client may refresh, its refresh token (rotated at each use, the remaining
refresh count going down). A code is single use: the DELETE that takes it decides the race
between two nodes.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update

from portico.store import Store
from portico.store.db import now_ms
from portico.store.tables import oauth_codes, oauth_tokens

NEVER_REFRESH = 0


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Issued:
    id: str
    access_token: str
    refresh_token: str | None
    expires_in: int | None  # seconds; None: never expires
    scope: str
    client_id: str
    owner_id: str


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    auth_server: str
    client_id: str
    owner_id: str
    scope: str
    grant_type: str
    created_at: int
    expires_at: int | None
    refresh_remaining: int
    revoked: bool
    has_refresh: bool

    def active(self, now: int) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)

    def view(self) -> dict[str, Any]:
        """The management list's shape (the guide's columns; the secrets themselves are not kept)."""
        return {"id": self.id, "clientId": self.client_id, "ownerId": self.owner_id, "scope": self.scope,
                "grantType": self.grant_type, "authServer": self.auth_server, "created": self.created_at,
                "expires": self.expires_at, "remainingRefreshCount": self.refresh_remaining if self.has_refresh else 0,
                "hasRefreshToken": self.has_refresh, "revoked": self.revoked}


@dataclass(frozen=True, slots=True)
class CodeRecord:
    client_id: str
    owner_id: str
    redirect_uri: str
    scope: str
    challenge: str | None
    challenge_method: str | None
    nonce: str | None
    expires_at: int


def _record(row: Any) -> TokenRecord:
    return TokenRecord(id=row.id, auth_server=row.auth_server, client_id=row.client_id, owner_id=row.owner_id,
                       scope=row.scope, grant_type=row.grant_type, created_at=row.created_at,
                       expires_at=row.expires_at, refresh_remaining=row.refresh_remaining, revoked=row.revoked,
                       has_refresh=row.refresh_hash is not None)


def _expiry(now: int, lifetime: int | None) -> int | None:
    return None if lifetime is None or lifetime < 0 else now + lifetime * 1000


class TokenStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def issue(self, client_id: str, owner_id: str, scope: str, grant_type: str, lifetime: int | None,
                    refresh_limit: int, auth_server: str = "local") -> Issued:
        """A new grant; a refresh token only when ``refresh_limit`` > 0."""
        access, refresh = new_secret(), (new_secret() if refresh_limit > 0 else None)
        now = now_ms()
        token_id = uuid.uuid4().hex
        async with self.store.engine.begin() as conn:
            await conn.execute(insert(oauth_tokens).values(
                id=token_id, access_hash=digest(access), refresh_hash=digest(refresh) if refresh else None,
                auth_server=auth_server, client_id=client_id, owner_id=owner_id, scope=scope, grant_type=grant_type,
                created_at=now, expires_at=_expiry(now, lifetime), refresh_remaining=max(refresh_limit, 0),
                revoked=False))
        return Issued(token_id, access, refresh, None if lifetime is None or lifetime < 0 else lifetime, scope,
                      client_id, owner_id)

    async def _one(self, condition: Any) -> TokenRecord | None:
        async with self.store.read_engine.connect() as conn:
            row = (await conn.execute(select(oauth_tokens).where(condition))).first()
        return _record(row) if row else None

    async def find_access(self, token: str) -> TokenRecord | None:
        return await self._one(oauth_tokens.c.access_hash == digest(token))

    async def find_refresh(self, token: str) -> TokenRecord | None:
        return await self._one(oauth_tokens.c.refresh_hash == digest(token))

    async def get(self, token_id: str) -> TokenRecord | None:
        return await self._one(oauth_tokens.c.id == token_id)

    async def refresh(self, record: TokenRecord, old_refresh: str, lifetime: int | None, scope: str) -> Issued | None:
        """Rotate the grant's tokens once; None when the refresh token was used meanwhile or has
        no refreshes left (the UPDATE's condition decides races)."""
        access = new_secret()
        remaining = record.refresh_remaining - 1
        refresh = new_secret() if remaining > 0 else None
        now = now_ms()
        t = oauth_tokens.c
        async with self.store.engine.begin() as conn:
            result = await conn.execute(
                update(oauth_tokens)
                .where(and_(t.id == record.id, t.refresh_hash == digest(old_refresh), t.refresh_remaining > 0,
                            t.revoked.is_(False)))
                .values(access_hash=digest(access), refresh_hash=digest(refresh) if refresh else None,
                        refresh_remaining=remaining, expires_at=_expiry(now, lifetime), scope=scope))
        if result.rowcount != 1:
            return None
        return Issued(record.id, access, refresh, None if lifetime is None or lifetime < 0 else lifetime, scope,
                      record.client_id, record.owner_id)

    async def revoke(self, token_id: str) -> bool:
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(oauth_tokens).where(oauth_tokens.c.id == token_id)
                                        .values(revoked=True))
        return bool(result.rowcount)

    async def revoke_secret(self, token: str, client_id: str) -> bool:
        """RFC 7009: revoke the grant whose access or refresh token is ``token``, if ``client_id``'s."""
        h = digest(token)
        t = oauth_tokens.c
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(oauth_tokens).where(and_(
                or_(t.access_hash == h, t.refresh_hash == h), t.client_id == client_id)).values(revoked=True))
        return bool(result.rowcount)

    async def list(self, client_id: str | None = None, owner_id: str | None = None, offset: int = 0,
                   limit: int = 100) -> tuple[list[TokenRecord], int]:
        t = oauth_tokens.c
        conditions = [c for c in (t.client_id == client_id if client_id else None,
                                  t.owner_id == owner_id if owner_id else None) if c is not None]
        where = and_(*conditions) if conditions else None
        query = select(oauth_tokens).order_by(t.created_at.desc(), t.id).offset(offset).limit(limit)
        count = select(func.count()).select_from(oauth_tokens)
        if where is not None:
            query, count = query.where(where), count.where(where)
        async with self.store.read_engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            total = int((await conn.execute(count)).scalar_one())
        return [_record(r) for r in rows], total

    async def purge_expired(self, now: int | None = None) -> int:
        """Delete revoked grants and expired ones that can no longer be refreshed, and expired codes."""
        now = now_ms() if now is None else now
        t = oauth_tokens.c
        dead = or_(t.revoked.is_(True),
                   and_(t.expires_at.is_not(None), t.expires_at <= now,
                        or_(t.refresh_hash.is_(None), t.refresh_remaining <= 0)))
        async with self.store.engine.begin() as conn:
            removed = (await conn.execute(delete(oauth_tokens).where(dead))).rowcount
            await conn.execute(delete(oauth_codes).where(oauth_codes.c.expires_at <= now))
        return int(removed or 0)

    # -- authorization codes --------------------------------------------------------------------

    async def save_code(self, client_id: str, owner_id: str, redirect_uri: str, scope: str, challenge: str | None,
                        challenge_method: str | None, nonce: str | None, lifetime: int) -> str:
        code = new_secret()
        now = now_ms()
        async with self.store.engine.begin() as conn:
            await conn.execute(insert(oauth_codes).values(
                code_hash=digest(code), client_id=client_id, owner_id=owner_id, redirect_uri=redirect_uri,
                scope=scope, challenge=challenge, challenge_method=challenge_method, nonce=nonce, created_at=now,
                expires_at=now + lifetime * 1000))
        return code

    async def take_code(self, code: str) -> CodeRecord | None:
        """The code's record, deleting it (single use); None if unknown or already taken."""
        h = digest(code)
        async with self.store.engine.begin() as conn:
            row = (await conn.execute(select(oauth_codes).where(oauth_codes.c.code_hash == h))).first()
            if row is None:
                return None
            taken = (await conn.execute(delete(oauth_codes).where(oauth_codes.c.code_hash == h))).rowcount
        if taken != 1:
            return None
        return CodeRecord(client_id=row.client_id, owner_id=row.owner_id, redirect_uri=row.redirect_uri,
                          scope=row.scope, challenge=row.challenge, challenge_method=row.challenge_method,
                          nonce=row.nonce, expires_at=row.expires_at)
