"""Opaque access tokens of the local server as the gateway sees them: looked up in the token table
and remembered for ``LOCAL_CACHE_SECONDS`` (a revocation shows within that bound), in bounded LRU
maps; and :class:`Lru`, the bounded map the OAuth runtime's caches use."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from portico.oauth.tokens import TokenStore
from portico.oauth.validate import TokenError, VerifiedToken

LOCAL_CACHE_SECONDS = 5.0  # how long a local token lookup is trusted (revocation shows after this)
LOOKUP_CAPACITY = 50_000  # local token lookups remembered
K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """A bounded mapping; the least recently used entry goes first (``evicted`` collects them)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()
        self.evicted: list[V] = []

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self.evicted.append(self._items.popitem(last=False)[1])
        return value

    def values(self) -> list[V]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class LocalTokens:
    """Opaque access tokens of the local server, looked up in the token table (briefly cached)."""

    def __init__(self, tokens: TokenStore, issuer: str, audience: str = "") -> None:
        self.tokens = tokens
        self.issuer = issuer
        self.audience = audience
        self._cache: Lru[str, tuple[float, VerifiedToken | None]] = Lru(LOOKUP_CAPACITY)
        self._grants: Lru[str, tuple[float, bool]] = Lru(LOOKUP_CAPACITY)
        self._generation = 0

    def forget(self) -> None:
        """Drop what was looked up, and keep no answer of a lookup under way: called for each new
        snapshot, so a grant revoked with the change it shows (an API deleted, its default scope
        freed: ``admin/scopes.forget_api``) is refused from that snapshot on, not up to
        ``LOCAL_CACHE_SECONDS`` later. Costs one more lookup per token per configuration change."""
        self._generation += 1
        self._cache.clear()
        self._grants.clear()

    async def lookup(self, token: str) -> VerifiedToken | None:
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return _still_valid(hit[1], now)
        generation = self._generation
        record = await self.tokens.find_access(token)
        verified: VerifiedToken | None = None
        if record is not None:
            if not record.active(int(now * 1000)):
                raise TokenError("expired" if not record.revoked else "inactive",
                                 "the access token was revoked" if record.revoked else "the access token has expired")
            exp = record.expires_at / 1000 if record.expires_at is not None else None
            claims: dict[str, Any] = {"active": True, "client_id": record.client_id, "sub": record.owner_id,
                                      "scope": record.scope, "iss": self.issuer, "exp": int(exp) if exp else None,
                                      "token_type": "Bearer"}
            if self.audience:
                claims["aud"] = self.audience
            verified = VerifiedToken(claims=claims, issuer=self.issuer, subject=record.owner_id,
                                     client_id=record.client_id, scopes=frozenset(record.scope.split()),
                                     expires_at=exp)
        if generation == self._generation:
            self._cache.put(token, (now + LOCAL_CACHE_SECONDS, verified))
            self._cache.evicted.clear()
        return verified

    async def grant_active(self, grant_id: str) -> bool:
        """Whether the grant ``grant_id`` exists and is not revoked (cached like lookups)."""
        now = time.time()
        hit = self._grants.get(grant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        record = await self.tokens.get(grant_id)
        active = record is not None and not record.revoked
        if generation == self._generation:
            self._grants.put(grant_id, (now + LOCAL_CACHE_SECONDS, active))
            self._grants.evicted.clear()
        return active


def _still_valid(verified: VerifiedToken | None, now: float) -> VerifiedToken | None:
    if verified is not None and verified.expires_at is not None and verified.expires_at <= now:
        raise TokenError("expired", "the access token has expired")
    return verified
