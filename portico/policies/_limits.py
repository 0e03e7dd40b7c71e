"""Request-count limits against the counters: the per-call check of the ``throttle`` policy and of
subscription plans (``gateway/plan_gate.py``). Not compiled: alone it gained nothing measurable
(it calls the interpreted counters for every check)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass

from portico.counters import Counters, CounterUnavailable, Window, counters_of, window_for
from portico.gateway.exchange import Exchange
from portico.gateway.view import Snapshot
from portico.policies.base import Violation

LIMIT_SETTINGS = "limit_settings"  # snap.extras key, published by the packages snapshot part


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Extended settings the limiters read; published by the plans snapshot part."""

    fail_open: bool = True
    start_day: str = "MONDAY"


DEFAULT_LIMIT_SETTINGS = LimitSettings()


def limit_settings(snap: Snapshot) -> LimitSettings:
    found: LimitSettings | None = snap.extras.get(LIMIT_SETTINGS)
    return found if found is not None else DEFAULT_LIMIT_SETTINGS


@dataclass(frozen=True, slots=True)
class Limit:
    """``count`` calls per ``interval`` ``unit``; ``name`` tells which limit in messages and keys."""

    name: str
    count: int
    interval: int
    unit: str


# What ``check_limit`` returns: the answer, or (counters held elsewhere, e.g. Redis) an awaitable of it.
Verdict = Violation | None | Awaitable[Violation | None]


def check_limit(ex: Exchange, key: str, limit: Limit, now: int | None = None) -> Verdict:
    """Count the call under ``key`` in the window holding ``now`` (epoch ms, default: the current
    time); a violation when the limit is reached (or the store is down and the gateway fails closed).

    Answers at once when the counter store can (in-process counters: no coroutine on the hot
    path), else returns an awaitable of the answer. ``settle`` turns either into the answer."""
    snap = ex.snapshot
    settings = limit_settings(snap)
    if now is None:
        now = int(time.time() * 1000)
    window = window_for(now, limit.interval, limit.unit, settings.start_day)
    counters = counters_of(snap.services)
    decision = counters.acquire_now(key, limit.count, window)
    if decision is None:
        return _check_remote(counters, settings, key, limit, window, now)
    return None if decision.allowed else _exceeded(limit, window, now)


async def settle(verdict: Verdict) -> Violation | None:
    """The answer of a ``check_limit`` verdict, awaiting it if it is not there yet."""
    if verdict is None or isinstance(verdict, Violation):
        return verdict
    return await verdict


async def _check_remote(counters: Counters, settings: LimitSettings, key: str, limit: Limit, window: Window,
                        now: int) -> Violation | None:
    try:
        decision = await counters.acquire(key, limit.count, window)
    except CounterUnavailable:
        if settings.fail_open:
            return None
        return Violation(503, "RATE_LIMIT_STORE_UNAVAILABLE", "The rate-limit counter store is unavailable.")
    return None if decision.allowed else _exceeded(limit, window, now)


def _exceeded(limit: Limit, window: Window, now: int) -> Violation:
    retry_after = max(1, -(-(window.end_ms - now) // 1000))
    message = f"The {limit.name} of {limit.count} requests per {limit.interval} {limit.unit} is exceeded."
    headers = ((b"retry-after", str(retry_after).encode()),)
    return Violation(429, "RATE_LIMIT_EXCEEDED", message, headers)


async def first_breach(ex: Exchange, key: str, limit: Limit) -> bool:
    """True for the first breach of ``key`` in the current window (on every node sharing counters)."""
    window = window_for(int(time.time() * 1000), limit.interval, limit.unit, limit_settings(ex.snapshot).start_day)
    try:
        return (await counters_of(ex.snapshot.services).acquire(key + "!alerted", 1, window)).allowed
    except CounterUnavailable:
        return False
