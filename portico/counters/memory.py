"""In-process counters (the default). Exact within one process: every operation runs to
completion without awaiting, so the event loop cannot interleave two check-and-increments.

One entry per key holds the count of the key's latest window. An operation on a window that
ended before that one began (a call admitted before a boundary whose success is tallied after
it) is not stored: it would otherwise replace, and so reset, the current window's count."""

from __future__ import annotations

import time

from portico.counters import Counters, Decision, Window


class MemoryCounters(Counters):
    name = "memory"

    # Past this many keys, entries of finished windows are dropped (keeps memory bounded).
    PRUNE_AT = 100_000

    def __init__(self) -> None:
        self._counts: dict[str, tuple[Window, int]] = {}
        self._prune_at = self.PRUNE_AT

    def _set(self, key: str, window: Window, count: int) -> None:
        self._counts[key] = (window, count)
        if len(self._counts) >= self._prune_at:
            now = int(time.time() * 1000)
            self._counts = {k: v for k, v in self._counts.items() if v[0].end_ms > now}
            self._prune_at = max(self.PRUNE_AT, 2 * len(self._counts))

    def _stale(self, key: str, window: Window) -> bool:
        entry = self._counts.get(key)
        return entry is not None and window.end_ms <= entry[0].start_ms

    def _current(self, key: str, window: Window) -> int:
        entry = self._counts.get(key)
        if entry is None:
            return 0
        stored = entry[0]
        if stored is not window and stored != window:  # window_for hands out one object per window
            return 0
        return entry[1]

    async def acquire(self, key: str, limit: int, window: Window) -> Decision:
        return self.acquire_now(key, limit, window)

    def acquire_now(self, key: str, limit: int, window: Window) -> Decision:
        if self._stale(key, window):  # its window is over: nothing left to count against
            return Decision(limit > 0, 1, window)
        count = self._current(key, window)
        if count >= limit:
            return Decision(False, count, window)
        self._set(key, window, count + 1)
        return Decision(True, count + 1, window)

    async def add(self, key: str, window: Window, amount: int = 1) -> int:
        if self._stale(key, window):
            return amount
        count = self._current(key, window) + amount
        self._set(key, window, count)
        return count

    async def get(self, key: str, window: Window) -> int:
        return self._current(key, window)

    async def put(self, key: str, window: Window, count: int) -> None:
        if self._stale(key, window):
            return
        self._set(key, window, max(count, self._current(key, window)))

    async def reset(self, prefix: str) -> None:
        for key in [k for k in self._counts if k.startswith(prefix)]:
            del self._counts[key]

    async def snapshot(self, prefix: str) -> list[tuple[str, Window, int]]:
        return [(k, w, c) for k, (w, c) in self._counts.items() if k.startswith(prefix)]
