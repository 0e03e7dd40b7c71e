"""Counters in Redis, shared by every gateway node started with the same ``--redis`` URL and
``--redis-prefix``.

One Redis key per (counter key, window): ``<prefix>|<key>@<window start>-<window end>``, expiring
shortly after the window ends. The prefix (default ``portico:ctr:``) keeps the counters of one
cluster apart from those of another cluster, or of other programs, using the same Redis database;
it cannot contain the ``|`` that ends it, so no two prefixes' names overlap, however the prefixes
start (``portico`` does not see ``portico2``'s keys).
``acquire`` is one Lua script (check, increment, set expiry), which Redis runs atomically, so N
nodes with any number of clients never grant more than the limit.

When Redis cannot be reached every call raises :class:`CounterUnavailable` at once for a short
back-off (no connect attempt per request), a warning is logged at most every 30 s, and the next
call after the back-off tries again while the others keep failing at once until it answers (a
hung Redis costs one call the socket timeout per back-off, not every call in flight): the store
recovers by itself."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from portico.counters import (
    REDIS_PREFIX,
    REDIS_PREFIX_END,
    Counters,
    CounterUnavailable,
    Decision,
    Window,
    redis_prefix_problem,
)

log = logging.getLogger("portico.counters")

_ACQUIRE = """
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c >= tonumber(ARGV[1]) then return {0, c} end
c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, c}
"""
_ADD = """
local c = redis.call('INCRBY', KEYS[1], ARGV[1])
if c == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return c
"""
_PUT = """
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return tonumber(ARGV[1]) end
return c
"""
# Keys outlive their window a little so a node with a slightly slow clock still sees them.
GRACE_MS = 60_000
BACKOFF_S = 1.0
LOG_EVERY_S = 30.0


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\*?[]" else c for c in text)


class RedisCounters(Counters):
    name = "redis"

    def __init__(self, url: str, prefix: str = REDIS_PREFIX, timeout: float = 2.0) -> None:
        problem = redis_prefix_problem(prefix)
        if problem:
            raise ValueError(f"the Redis key prefix {problem}")
        self.prefix = prefix
        self._head = prefix + REDIS_PREFIX_END  # what every name of this prefix, and only of it, starts with
        # SCAN patterns are globs: the prefix is matched literally, whatever characters it has.
        self._pattern_prefix = _glob_escape(self._head)
        # A blocking pool: a burst of concurrent calls waits for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=64, timeout=5.0, socket_connect_timeout=timeout, socket_timeout=timeout,
        )
        self._client: Any = aioredis.Redis(connection_pool=pool)
        self._acquire = self._client.register_script(_ACQUIRE)
        self._add = self._client.register_script(_ADD)
        self._put = self._client.register_script(_PUT)
        self._down_until = 0.0
        self._probing = False
        self._last_log = 0.0
        self._url = url

    def _key(self, key: str, window: Window) -> str:
        return f"{self._head}{key}@{window.start_ms}-{window.end_ms}"

    @staticmethod
    def _ttl(window: Window) -> int:
        return max(window.end_ms - int(time.time() * 1000), 0) + GRACE_MS

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now < self._down_until or self._probing:
            raise CounterUnavailable("the Redis counter store is unreachable")
        probe = self._down_until > 0  # the first call after a back-off finds out for all the others
        self._probing = probe
        try:
            result = await fn(*args, **kwargs)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down_until = time.monotonic() + BACKOFF_S
            if now - self._last_log >= LOG_EVERY_S:
                self._last_log = now
                log.warning("Redis counter store %s unreachable (%s); retrying every %.0fs", self._url, exc, BACKOFF_S)
            raise CounterUnavailable(str(exc)) from exc
        finally:
            if probe:
                self._probing = False
        if self._last_log and self._down_until:
            log.warning("Redis counter store %s reachable again", self._url)
            self._last_log = 0.0
        self._down_until = 0.0
        return result

    async def acquire(self, key: str, limit: int, window: Window) -> Decision:
        allowed, count = await self._call(self._acquire, keys=[self._key(key, window)],
                                          args=[limit, self._ttl(window)])
        return Decision(bool(allowed), int(count), window)

    async def add(self, key: str, window: Window, amount: int = 1) -> int:
        return int(await self._call(self._add, keys=[self._key(key, window)], args=[amount, self._ttl(window)]))

    async def get(self, key: str, window: Window) -> int:
        raw = await self._call(self._client.get, self._key(key, window))
        return int(raw) if raw is not None else 0

    async def put(self, key: str, window: Window, count: int) -> None:
        await self._call(self._put, keys=[self._key(key, window)], args=[count, self._ttl(window)])

    async def incarnation(self) -> str:
        # A restarted Redis gets a new run_id (without persistence it comes back empty).
        info = await self._call(self._client.info, "server")
        return str(info.get("run_id", ""))

    async def _scan(self, prefix: str) -> list[bytes]:
        found: list[bytes] = []
        async for name in self._client.scan_iter(match=f"{self._pattern_prefix}{_glob_escape(prefix)}*", count=500):
            found.append(name)
        return found

    async def reset(self, prefix: str) -> None:
        names = await self._call(self._scan, prefix)
        if names:
            await self._call(self._client.delete, *names)

    async def snapshot(self, prefix: str) -> list[tuple[str, Window, int]]:
        names = await self._call(self._scan, prefix)
        out: list[tuple[str, Window, int]] = []
        if not names:
            return out
        values = await self._call(self._client.mget, names)
        for name, value in zip(names, values, strict=True):
            if value is None:
                continue
            full, _, span = name.decode().rpartition("@")
            start, _, end = span.partition("-")
            out.append((full[len(self._head):], Window(int(start), int(end)), int(value)))
        return out

    async def close(self) -> None:
        await self._client.aclose()
