"""The process-wide store behind ``serviceResultCache``: per API, key -> response, TTL + LRU.

Kept as a gateway service (``snap.services``), so entries survive configuration reloads; the
management API (``/serviceResultCache``) reads sizes and clears it through the same service."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portico.gateway.snapshot import Services

SERVICE = "serviceResultCache"
MAX_ENTRIES_PER_API = 10_000  # memory bound besides the per-response size limit


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    reason: str
    expires: float  # time.monotonic()


class ResultCache:
    def __init__(self) -> None:
        self._apis: dict[str, OrderedDict[str, CachedResponse]] = {}

    def get(self, api_id: str, key: str) -> CachedResponse | None:
        entries = self._apis.get(api_id)
        if not entries:
            return None
        hit = entries.get(key)
        if hit is None:
            return None
        if hit.expires <= time.monotonic():
            del entries[key]
            return None
        entries.move_to_end(key)
        return hit

    def put(self, api_id: str, key: str, response: CachedResponse) -> None:
        entries = self._apis.setdefault(api_id, OrderedDict())
        entries[key] = response
        entries.move_to_end(key)
        while len(entries) > MAX_ENTRIES_PER_API:
            entries.popitem(last=False)

    def size(self, api_id: str) -> int:
        """Live entries of the API (expired ones are dropped on the way)."""
        entries = self._apis.get(api_id)
        if not entries:
            return 0
        now = time.monotonic()
        for key in [k for k, v in entries.items() if v.expires <= now]:
            del entries[key]
        return len(entries)

    def clear(self, api_id: str) -> None:
        self._apis.pop(api_id, None)


def cache_of(services: Services) -> ResultCache:
    cache: ResultCache = services.get_or_create(SERVICE, lambda _s: ResultCache())
    return cache
