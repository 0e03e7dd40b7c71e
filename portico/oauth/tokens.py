"""Access tokens, refresh tokens and authorization codes issued by the local authorization server.

Only SHA-256 digests of the secrets are stored (``oauth_tokens``, ``oauth_codes``), on the store's
engine directly: issuing a token is not a configuration change. One row is one grant: its access
token and, when the client may refresh, its refresh token (rotated at each use, the remaining
refresh count going down, valid until ``refresh_expires_at``). A refresh token rotated out is
remembered (``oauth_refresh_used``): presenting it again means two parties hold the grant, so the
grant is revoked (RFC 9700 4.14.2). A code is single use, and is taken in the same transaction that
issues its tokens: a failure while issuing leaves the code in place.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from portico.store import Store
from portico.store.db import now_ms
from portico.store.tables import oauth_codes, oauth_refresh_used, oauth_tokens

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
    refresh_expires_at: int | None = None

    def active(self, now: int) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)

    def refreshable(self, now: int) -> bool:
        return (not self.revoked and self.has_refresh and self.refresh_remaining > 0
                and (self.refresh_expires_at is None or self.refresh_expires_at > now))

    def view(self) -> dict[str, Any]:
        """The management list's shape (the guide's columns; the secrets themselves are not kept)."""
        return {"id": self.id, "clientId": self.client_id, "ownerId": self.owner_id, "scope": self.scope,
                "grantType": self.grant_type, "authServer": self.auth_server, "created": self.created_at,
                "expires": self.expires_at, "remainingRefreshCount": self.refresh_remaining if self.has_refresh else 0,
                "hasRefreshToken": self.has_refresh, "refreshExpires": self.refresh_expires_at if self.has_refresh
                else None, "revoked": self.revoked}


@dataclass(frozen=True, slots=True)
class CodeRecord:
    client_id: str
    owner_id: str
    redirect_uri: str  # "" when the authorization request did not send one
    scope: str
    challenge: str | None
    challenge_method: str | None
    nonce: str | None
    expires_at: int


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """Seconds; None (or negative): never expires."""

    access: int | None
    refresh: int | None = None


class RefreshReplayed(Exception):
    """A refresh token that was already rotated out was presented: its grant is now revoked."""


def _record(row: Any) -> TokenRecord:
    return TokenRecord(id=row.id, auth_server=row.auth_server, client_id=row.client_id, owner_id=row.owner_id,
                       scope=row.scope, grant_type=row.grant_type, created_at=row.created_at,
                       expires_at=row.expires_at, refresh_remaining=row.refresh_remaining, revoked=row.revoked,
                       has_refresh=row.refresh_hash is not None, refresh_expires_at=row.refresh_expires_at)


def _expiry(now: int, lifetime: int | None) -> int | None:
    return None if lifetime is None or lifetime < 0 else now + lifetime * 1000


def _seconds(lifetime: int | None) -> int | None:
    return None if lifetime is None or lifetime < 0 else lifetime


def _carrying(column: Any, scope: str) -> Any:
    """Rows whose space-separated ``column`` may carry ``scope`` (a superset: callers check the words)."""
    return column.contains(scope, autoescape=True)


async def revoke_scope(conn: AsyncConnection, scope: str, auth_server: str = "local") -> int:
    """Revoke every grant of ``auth_server`` carrying ``scope`` (its access and refresh tokens, and
    so the ID tokens whose ``sid`` it is) and drop the pending authorization codes asking for it, on
    ``conn``: the caller's transaction, so the revocation commits with the change that frees the
    scope (``admin/scopes.forget_api``). Returns how many grants were revoked."""
    t = oauth_tokens.c
    rows = (await conn.execute(select(t.id, t.scope).where(and_(
        t.auth_server == auth_server, t.revoked.is_(False), _carrying(t.scope, scope))))).all()
    ids = [r.id for r in rows if scope in r.scope.split()]
    if ids:
        await conn.execute(update(oauth_tokens).where(t.id.in_(ids)).values(revoked=True))
    if auth_server == "local":  # codes are the local server's only
        c = oauth_codes.c
        codes = (await conn.execute(select(c.code_hash, c.scope).where(_carrying(c.scope, scope)))).all()
        hashes = [r.code_hash for r in codes if scope in r.scope.split()]
        if hashes:
            await conn.execute(delete(oauth_codes).where(c.code_hash.in_(hashes)))
    return len(ids)


async def scope_in_use(conn: AsyncConnection, scope: str, auth_server: str = "local", now: int | None = None) -> bool:
    """Whether a grant of ``auth_server`` that can still be used (not revoked; its access token
    unexpired, or its refresh token usable) or a pending code carries ``scope``."""
    now = now_ms() if now is None else now
    t = oauth_tokens.c
    live = or_(t.expires_at.is_(None), t.expires_at > now,
               and_(t.refresh_hash.is_not(None), t.refresh_remaining > 0,
                    or_(t.refresh_expires_at.is_(None), t.refresh_expires_at > now)))
    rows = (await conn.execute(select(t.scope).where(and_(
        t.auth_server == auth_server, t.revoked.is_(False), live, _carrying(t.scope, scope))))).all()
    if any(scope in r.scope.split() for r in rows):
        return True
    if auth_server != "local":
        return False
    c = oauth_codes.c
    codes = (await conn.execute(select(c.scope).where(and_(c.expires_at > now, _carrying(c.scope, scope))))).all()
    return any(scope in r.scope.split() for r in codes)


class TokenStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _insert_grant(self, conn: AsyncConnection, client_id: str, owner_id: str, scope: str,
                            grant_type: str, lifetimes: Lifetimes, refresh_limit: int, auth_server: str) -> Issued:
        access, refresh = new_secret(), (new_secret() if refresh_limit > 0 else None)
        now = now_ms()
        token_id = uuid.uuid4().hex
        await conn.execute(insert(oauth_tokens).values(
            id=token_id, access_hash=digest(access), refresh_hash=digest(refresh) if refresh else None,
            auth_server=auth_server, client_id=client_id, owner_id=owner_id, scope=scope, grant_type=grant_type,
            created_at=now, expires_at=_expiry(now, lifetimes.access), refresh_remaining=max(refresh_limit, 0),
            revoked=False, refresh_expires_at=_expiry(now, lifetimes.refresh) if refresh else None))
        return Issued(token_id, access, refresh, _seconds(lifetimes.access), scope, client_id, owner_id)

    async def issue(self, client_id: str, owner_id: str, scope: str, grant_type: str, lifetimes: Lifetimes,
                    refresh_limit: int, auth_server: str = "local") -> Issued:
        """A new grant; a refresh token only when ``refresh_limit`` > 0."""
        async with self.store.engine.begin() as conn:
            return await self._insert_grant(conn, client_id, owner_id, scope, grant_type, lifetimes, refresh_limit,
                                            auth_server)

    async def _one(self, condition: Any) -> TokenRecord | None:
        async with self.store.read_engine.connect() as conn:
            row = (await conn.execute(select(oauth_tokens).where(condition))).first()
        return _record(row) if row else None

    async def find_access(self, token: str) -> TokenRecord | None:
        return await self._one(oauth_tokens.c.access_hash == digest(token))

    async def find_refresh(self, token: str) -> TokenRecord | None:
        """The grant whose current refresh token is ``token``. RefreshReplayed (after revoking the
        grant) when ``token`` is one of its earlier, rotated-out refresh tokens."""
        record = await self._one(oauth_tokens.c.refresh_hash == digest(token))
        if record is not None:
            return record
        async with self.store.engine.begin() as conn:
            used = (await conn.execute(select(oauth_refresh_used.c.token_id)
                                       .where(oauth_refresh_used.c.refresh_hash == digest(token)))).first()
            if used is None:
                return None
            await conn.execute(update(oauth_tokens).where(oauth_tokens.c.id == used.token_id).values(revoked=True))
        raise RefreshReplayed(used.token_id)

    async def get(self, token_id: str) -> TokenRecord | None:
        return await self._one(oauth_tokens.c.id == token_id)

    async def refresh(self, record: TokenRecord, old_refresh: str, lifetimes: Lifetimes, scope: str) -> Issued | None:
        """Rotate the grant's tokens once; None when the refresh token was used meanwhile, has no
        refreshes left or has expired (the UPDATE's condition decides races)."""
        access = new_secret()
        remaining = record.refresh_remaining - 1
        refresh = new_secret() if remaining > 0 else None
        now = now_ms()
        t = oauth_tokens.c
        async with self.store.engine.begin() as conn:
            result = await conn.execute(
                update(oauth_tokens)
                .where(and_(t.id == record.id, t.refresh_hash == digest(old_refresh), t.refresh_remaining > 0,
                            t.revoked.is_(False), or_(t.refresh_expires_at.is_(None), t.refresh_expires_at > now)))
                .values(access_hash=digest(access), refresh_hash=digest(refresh) if refresh else None,
                        refresh_remaining=remaining, expires_at=_expiry(now, lifetimes.access), scope=scope,
                        refresh_expires_at=_expiry(now, lifetimes.refresh) if refresh else None))
            if result.rowcount != 1:
                return None
            await conn.execute(insert(oauth_refresh_used).values(refresh_hash=digest(old_refresh),
                                                                 token_id=record.id, used_at=now))
        return Issued(record.id, access, refresh, _seconds(lifetimes.access), scope, record.client_id,
                      record.owner_id)

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

    async def revoke_client(self, client_id: str, auth_server: str = "local", before: int | None = None) -> int:
        """Revoke every grant of ``client_id`` (issued before ``before``, epoch ms, when given) and
        drop its pending authorization codes: a deleted client or a rotated secret leaves no token
        behind. Returns how many grants were revoked."""
        t = oauth_tokens.c
        condition = and_(t.client_id == client_id, t.auth_server == auth_server, t.revoked.is_(False))
        if before is not None:
            condition = and_(condition, t.created_at <= before)
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(oauth_tokens).where(condition).values(revoked=True))
            codes = oauth_codes.c
            await conn.execute(delete(oauth_codes).where(
                codes.client_id == client_id if before is None else and_(codes.client_id == client_id,
                                                                         codes.created_at <= before)))
        return int(result.rowcount or 0)

    async def list(self, client_id: str | None = None, owner_id: str | None = None, offset: int = 0,
                   limit: int = 100, client_ids: Collection[str] | None = None) -> tuple[list[TokenRecord], int]:
        """Grants, newest first; ``client_ids`` (when not None) narrows them to those clients."""
        t = oauth_tokens.c
        conditions = [c for c in (t.client_id == client_id if client_id else None,
                                  t.owner_id == owner_id if owner_id else None,
                                  t.client_id.in_(sorted(client_ids)) if client_ids is not None else None)
                      if c is not None]
        where = and_(*conditions) if conditions else None
        query = select(oauth_tokens).order_by(t.created_at.desc(), t.id).offset(offset).limit(limit)
        count = select(func.count()).select_from(oauth_tokens)
        if where is not None:
            query, count = query.where(where), count.where(where)
        async with self.store.read_engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            total = int((await conn.execute(count)).scalar_one())
        return [_record(r) for r in rows], total

    async def purge_expired(self, now: int | None = None, client_ids: Collection[str] | None = None) -> int:
        """Delete revoked grants and expired ones that can no longer be refreshed (no refresh token,
        no refreshes left, or the refresh token expired), the refresh tokens they rotated out, and
        expired codes; ``client_ids`` (when not None) narrows all of them to those clients."""
        now = now_ms() if now is None else now
        t = oauth_tokens.c
        dead = or_(t.revoked.is_(True),
                   and_(t.expires_at.is_not(None), t.expires_at <= now,
                        or_(t.refresh_hash.is_(None), t.refresh_remaining <= 0,
                            and_(t.refresh_expires_at.is_not(None), t.refresh_expires_at <= now))))
        expired_codes = oauth_codes.c.expires_at <= now
        if client_ids is not None:
            dead = and_(dead, t.client_id.in_(sorted(client_ids)))
            expired_codes = and_(expired_codes, oauth_codes.c.client_id.in_(sorted(client_ids)))
        async with self.store.engine.begin() as conn:
            dead_ids = select(oauth_tokens.c.id).where(dead)
            await conn.execute(delete(oauth_refresh_used).where(oauth_refresh_used.c.token_id.in_(dead_ids)))
            removed = (await conn.execute(delete(oauth_tokens).where(dead))).rowcount
            await conn.execute(delete(oauth_codes).where(expired_codes))
        return int(removed or 0)

    # -- authorization codes --------------------------------------------------------------------

    async def save_code(self, client_id: str, owner_id: str, redirect_uri: str, scope: str, challenge: str | None,
                        challenge_method: str | None, nonce: str | None, lifetime: int) -> str:
        """A new code; ``redirect_uri`` "" when the authorization request did not send one."""
        code = new_secret()
        now = now_ms()
        async with self.store.engine.begin() as conn:
            await conn.execute(insert(oauth_codes).values(
                code_hash=digest(code), client_id=client_id, owner_id=owner_id, redirect_uri=redirect_uri,
                scope=scope, challenge=challenge, challenge_method=challenge_method, nonce=nonce, created_at=now,
                expires_at=now + lifetime * 1000))
        return code

    async def exchange_code(self, code: str, check: Callable[[CodeRecord | None], None], grant_type: str,
                            lifetimes: Lifetimes, refresh_limit: int) -> tuple[CodeRecord, Issued]:
        """Take the code (single use) and issue its grant in one transaction. ``check`` raises to
        refuse the code (unknown, expired, another client, PKCE...): the code is consumed all the
        same, as RFC 6749 4.1.2 wants. A failure of the server itself (an exception with a
        ``status`` of 500 or more, or one while issuing) rolls back: the code stays usable."""
        h = digest(code)
        refused: Exception | None = None
        issued: tuple[CodeRecord, Issued] | None = None
        async with self.store.engine.begin() as conn:
            row = (await conn.execute(select(oauth_codes).where(oauth_codes.c.code_hash == h))).first()
            taken = 0
            if row is not None:
                taken = (await conn.execute(delete(oauth_codes).where(oauth_codes.c.code_hash == h))).rowcount
            record = None if row is None or taken != 1 else CodeRecord(
                client_id=row.client_id, owner_id=row.owner_id, redirect_uri=row.redirect_uri, scope=row.scope,
                challenge=row.challenge, challenge_method=row.challenge_method, nonce=row.nonce,
                expires_at=row.expires_at)
            try:
                check(record)
            except Exception as exc:
                if int(getattr(exc, "status", 400)) >= 500:
                    raise  # the server's own failure: roll back, the code stays usable
                refused = exc  # refused: commit the deletion, then raise
            if refused is None:
                assert record is not None
                grant = await self._insert_grant(conn, record.client_id, record.owner_id, record.scope, grant_type,
                                                 lifetimes, refresh_limit, "local")
                issued = (record, grant)
        if refused is not None:
            raise refused
        assert issued is not None
        return issued
