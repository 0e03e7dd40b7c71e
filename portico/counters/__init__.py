"""Request counters for rate limits and quotas: one interface, backends chosen by name.

A counter is a key plus a fixed window (``Window``: start and end in epoch
milliseconds, aligned to interval boundaries). ``acquire`` is the atomic
"count this call if it still fits" step: with a limit of N, at most N calls in
one window are granted however many run at once, on one node (``memory``) or on
every node sharing one Redis (``redis``).

Backends: ``BACKENDS`` maps a short name to ``module:Class``, loaded lazily.
``counters_of(services)`` returns the process's store: Redis when the node was
started with ``--redis`` (``services.options["redis_url"]``, keys under ``services.options["redis_prefix"]``,
``--redis-prefix``), memory otherwise."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from portico.settings import WEEKDAYS

if TYPE_CHECKING:
    from portico.gateway.snapshot import Services

BACKENDS: dict[str, str] = {
    "memory": "portico.counters.memory:MemoryCounters",
    "redis": "portico.counters.redis:RedisCounters",
}

# Redis keys of the default cluster; ``--redis-prefix`` gives another cluster sharing the Redis its own.
REDIS_PREFIX = "portico:ctr:"
# Ends the prefix in every Redis name (``<prefix>|<key>@<window>``). A prefix may not contain it, so
# the names of one prefix never start like those of another: ``portico`` and ``portico2`` (or
# ``porticoq:``, the start of ``portico``'s quota keys) each list, save and clear only their own.
REDIS_PREFIX_END = "|"


def redis_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a ``--redis-prefix``; None when it can."""
    if not prefix:
        return "must not be empty: the counters need a key prefix of their own"
    if REDIS_PREFIX_END in prefix:
        return f"must not contain {REDIS_PREFIX_END!r}: it ends the prefix in every Redis key"
    return None

UNIT_MS: dict[str, int] = {
    "seconds": 1000,
    "minutes": 60_000,
    "hours": 3_600_000,
    "days": 86_400_000,
    "weeks": 604_800_000,
}
INTERVAL_UNITS = (*UNIT_MS, "months")


class CounterUnavailable(Exception):
    """The backend cannot be reached; the caller applies the fail-open/fail-closed setting."""


@dataclass(frozen=True, slots=True)
class Window:
    start_ms: int
    end_ms: int

    @property
    def length_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(slots=True)
class Decision:
    """Made for every rate-limited call; not frozen, since a frozen dataclass takes twice as long
    to build. Treat it as read-only."""

    allowed: bool
    count: int  # the window's count after this call
    window: Window


# The last window computed per (interval, unit, start day): every call of a limited API asks for
# it, and within the window the answer is the same object (memory counters compare windows by
# identity first).
_CURRENT: dict[tuple[int, str, str], Window] = {}


def window_for(now_ms: int, interval: int, unit: str, start_day: str = "MONDAY") -> Window:
    """The fixed window holding ``now_ms``: epoch-aligned multiples of ``interval`` units (UTC).

    Weeks start at 00:00 UTC on ``start_day`` (the ``startDayOfTheWeek`` setting);
    months are calendar months."""
    key = (interval, unit, start_day)
    window = _CURRENT.get(key)
    if window is not None and window.start_ms <= now_ms < window.end_ms:
        return window
    window = _window_for(now_ms, interval, unit, start_day)
    if len(_CURRENT) > 1000:  # limits come from configuration, but stay bounded whatever it holds
        _CURRENT.clear()
    _CURRENT[key] = window
    return window


def _window_for(now_ms: int, interval: int, unit: str, start_day: str) -> Window:
    if interval < 1:
        raise ValueError("interval must be at least 1")
    if unit == "months":
        return _month_window(now_ms, interval)
    size = UNIT_MS[unit] * interval
    offset = 0
    if unit == "weeks":
        # 1970-01-01 was a Thursday (index 3); shift so windows begin on start_day.
        day = WEEKDAYS.index(start_day.upper()) if start_day.upper() in WEEKDAYS else 0
        offset = ((day - 3) % 7) * UNIT_MS["days"]
    start = (now_ms - offset) // size * size + offset
    return Window(start, start + size)


def _month_window(now_ms: int, interval: int) -> Window:
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    first = ((now.year - 1970) * 12 + now.month - 1) // interval * interval
    last = first + interval
    start = datetime(1970 + first // 12, first % 12 + 1, 1, tzinfo=UTC)
    end = datetime(1970 + last // 12, last % 12 + 1, 1, tzinfo=UTC)
    return Window(int(start.timestamp() * 1000), int(end.timestamp() * 1000))


class Counters(ABC):
    """The counter store contract. Keys are opaque strings; a key's count belongs to one window
    and starts from zero in the next one."""

    name: str = ""

    @abstractmethod
    async def acquire(self, key: str, limit: int, window: Window) -> Decision:
        """Count one call if the window's count is below ``limit``; atomic across callers.
        Raises :class:`CounterUnavailable` when the backend cannot answer."""

    def acquire_now(self, key: str, limit: int, window: Window) -> Decision | None:
        """``acquire`` done at once, for a backend that holds its counts in the process; None
        when the answer needs a round trip (then await ``acquire``). Limited calls go through
        here first: an in-process count then costs no coroutine at all."""
        return None

    @abstractmethod
    async def add(self, key: str, window: Window, amount: int = 1) -> int:
        """Add unconditionally (success/failure tallies); returns the new count."""

    @abstractmethod
    async def get(self, key: str, window: Window) -> int:
        """The key's count in ``window`` (0 when it belongs to another window)."""

    @abstractmethod
    async def put(self, key: str, window: Window, count: int) -> None:
        """Set the count (restoring persisted quotas); keeps a higher live count."""

    @abstractmethod
    async def reset(self, prefix: str) -> None:
        """Forget every key that starts with ``prefix``."""

    @abstractmethod
    async def snapshot(self, prefix: str) -> list[tuple[str, Window, int]]:
        """Every live (key, window, count) under ``prefix`` (for persistence)."""

    async def incarnation(self) -> str:
        """Identifies the store's current life: it changes when the store restarted and may have
        lost its counts (quota survival then restores the saved ones). Raises
        :class:`CounterUnavailable` when the backend cannot answer."""
        return ""

    async def close(self) -> None:
        return None


def load_backend(name: str, **options: Any) -> Counters:
    """Instantiate the backend registered under ``name``."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown counter backend {name!r}; known: {sorted(BACKENDS)}") from None
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    counters: Counters = cls(**options)
    return counters


def _create(services: Services) -> Counters:
    url = services.options.get("redis_url")
    if url:
        prefix = services.options.get("redis_prefix")
        counters = load_backend("redis", url=url, **({"prefix": prefix} if prefix is not None else {}))
    else:
        counters = load_backend("memory")
    services.closers.append(counters.close)
    return counters


def counters_of(services: Services) -> Counters:
    """The process-wide counter store (created on first use, closed with the services)."""
    counters: Counters = services.get_or_create("counters", _create)
    return counters
