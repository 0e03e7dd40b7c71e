"""``serviceResultCache`` (LMT): answer repeated calls from a cache, without the native call.

Key: method + resource path + query + the values of the ``cacheCriteria.httpHeader`` headers.
A header or query criterion with a ``whiteList`` makes a call cacheable only when its value is
listed. Only GET and HEAD calls and 2xx answers no larger than ``max-payload-size`` bytes are
cached, for ``ttl`` ("5d 4h 1m": days, hours, minutes, seconds). XPATH criteria are not supported
yet. A hit marks the transaction event ``cachedResponse``."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs

from pydantic import Field, field_validator

from portico.events.model import TransactionEvent
from portico.gateway.exchange import EVENT_HOOKS, BufferedResponse, Exchange
from portico.policies._cache import CachedResponse, cache_of
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

_TTL_PART = re.compile(r"(\d+)\s*(d|h|m|s)\b", re.IGNORECASE)
_TTL_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_STATE = "serviceResultCache"


def parse_ttl(text: str) -> int:
    """Seconds in a TTL like "5d 4h 1m" or "30s"; ValueError when malformed or zero."""
    stripped = text.strip()
    if stripped.isdigit():
        seconds = int(stripped)
    else:
        parts = _TTL_PART.findall(stripped)
        if not parts or _TTL_PART.sub("", stripped).strip():
            raise ValueError(f"must look like '5d 4h 1m' (days, hours, minutes, seconds), got {text!r}")
        seconds = sum(int(n) * _TTL_UNITS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


class HeaderCriterion(PolicyConfig):
    httpHeaderName: str = Field(min_length=1, description="Request header that is part of the cache key.")
    whiteList: list[str] = Field(default_factory=list, description="Values that may be cached (empty: any).")


class QueryCriterion(PolicyConfig):
    queryParamName: str = Field(min_length=1, description="Query parameter checked against whiteList.")
    whiteList: list[str] = Field(default_factory=list, description="Values that may be cached (empty: any).")


class CacheCriteria(PolicyConfig):
    httpHeader: list[HeaderCriterion] = Field(default_factory=list, description="Header criteria.")
    queryParam: list[QueryCriterion] = Field(default_factory=list, description="Query parameter criteria.")
    XPATH: list[Any] = Field(default_factory=list, description="Payload criteria (not supported yet).")

    @field_validator("XPATH")
    @classmethod
    def _no_xpath(cls, value: list[Any]) -> list[Any]:
        if value:
            raise ValueError("XPATH cache criteria are not supported yet")
        return value


class ServiceResultCacheConfig(PolicyConfig):
    ttl: str = Field(description="How long a response is kept, e.g. '5d 4h 1m' or '30s'.")
    max_payload_size: int | None = Field(
        default=None, ge=0, alias="max-payload-size", description="Largest response body cached, in bytes.")
    cacheCriteria: CacheCriteria = Field(default_factory=CacheCriteria, description="What the key and "
                                                                                     "cacheability depend on.")

    @field_validator("ttl")
    @classmethod
    def _check_ttl(cls, value: str) -> str:
        parse_ttl(value)
        return value


class ServiceResultCache(PolicyHandler):
    template_key = "serviceResultCache"
    stage = "LMT"
    title = "Service Result Cache"
    Config = ServiceResultCacheConfig
    needs_response_body = True

    def __init__(self, config: ServiceResultCacheConfig) -> None:
        super().__init__(config)
        self._ttl = parse_ttl(config.ttl)
        self._max = config.max_payload_size
        criteria = config.cacheCriteria
        self._headers = tuple((h.httpHeaderName.lower().encode("latin-1"), frozenset(h.whiteList))
                              for h in criteria.httpHeader)
        self._query = tuple((q.queryParamName, frozenset(q.whiteList)) for q in criteria.queryParam)

    def _key(self, ex: Exchange) -> str | None:
        """The cache key, or None when the call is not cacheable."""
        if ex.method not in ("GET", "HEAD"):
            return None
        # The caller is part of the key: one application must never be served another's answer
        # (responses may carry its data or credentials). Anonymous calls share one entry.
        caller = ex.application.id if ex.application is not None else (ex.user or "")
        parts = [ex.method, ex.resource_path, ex.query, caller]
        for name, allowed in self._headers:
            value = (ex.request.header(name) or b"").decode("latin-1")
            if allowed and value not in allowed:
                return None
            parts.append(value)
        if self._query:
            params = parse_qs(ex.query, keep_blank_values=True)
            for qname, allowed in self._query:
                if allowed and not set(params.get(qname, ())) & allowed:
                    return None
        return "\n".join(parts)

    def run(self, ex: Exchange) -> Violation | None:
        key = self._key(ex)
        if key is None:
            return None
        state = ex.policy_state(_STATE)
        hit = cache_of(ex.snapshot.services).get(ex.api.id, key)
        if hit is None:
            state["key"] = key
            return None
        state["hit"] = True
        ex.response = BufferedResponse(hit.status, list(hit.headers), hit.body, hit.reason)
        ex.policy_state(EVENT_HOOKS)[_STATE] = _mark_cached
        return None

    def on_response(self, ex: Exchange) -> None:
        state = ex.state.get(_STATE) if ex.state else None
        response = ex.response
        if not state or "key" not in state or response is None or not 200 <= response.status < 300:
            return
        if self._max is not None and len(response.body) > self._max:
            return
        entry = CachedResponse(response.status, tuple(response.headers), response.body, response.reason,
                               time.monotonic() + self._ttl)
        cache_of(ex.snapshot.services).put(ex.api.id, state["key"], entry)


def _mark_cached(event: TransactionEvent) -> None:
    event.cached_response = True
