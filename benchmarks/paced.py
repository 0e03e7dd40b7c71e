#!/usr/bin/env python3
"""Open-loop paced HTTP/1.1 load generator for latency runs (a small stand-in for wrk2).

Requests are scheduled at fixed intervals (``1 / rate``) and sent over a pool of keep-alive
connections. Latency is measured from each request's *scheduled* send time, not from when it
was actually written, so a stalled server is charged for the requests it delayed (no
coordinated omission). If every connection is busy at a scheduled time, the request waits for
the next free one and that wait counts as latency.

The event loop wakes with ~1 ms granularity (epoll), so sends lag their schedule by up to about
a millisecond; the lag is reported separately (``lag_p50_ms``/``lag_p99_ms``) and is the same
for every target, so differences between targets (added latency) are not affected by it.

Usage (prints one JSON object):
    paced.py URL [--rate 2000] [--duration 10] [--connections 64]
                 [--keys-file FILE --header NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import cast

import httptools

try:
    import uvloop

    HAVE_UVLOOP = True
except ImportError:  # uvloop is optional, asyncio works too (with more send lag)
    HAVE_UVLOOP = False


@dataclass
class Stats:
    """Raw samples of one run, all times in nanoseconds."""

    latencies: list[int] = field(default_factory=list)
    lags: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    last_done: int = 0


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time (no pipelining)."""

    def __init__(self, stats: Stats, on_idle: deque[Connection], wake: asyncio.Event) -> None:
        self.stats = stats
        self.idle = on_idle
        self.wake = wake
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.scheduled = 0
        self.busy = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, scheduled: int) -> None:
        assert self.transport is not None
        self.busy = True
        self.scheduled = scheduled
        self.stats.lags.append(time.perf_counter_ns() - scheduled)
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.stats.errors += 1
            self.abort()

    def on_message_complete(self) -> None:
        now = time.perf_counter_ns()
        self.stats.latencies.append(now - self.scheduled)
        self.stats.last_done = now
        status = self.parser.get_status_code()
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        self.busy = False
        self.idle.append(self)
        self.wake.set()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.stats.errors += 1
            self.busy = False
        with contextlib.suppress(ValueError):
            self.idle.remove(self)
        self.wake.set()
        if not self.closed.done():
            self.closed.set_result(None)


def build_requests(url: str, header: str | None, keys: list[str]) -> list[bytes]:
    """Pre-render the raw requests; with keys, one request per key, rotated in order."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    base = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    if not keys or header is None:
        return [(base + "\r\n").encode()]
    return [(base + f"{header}: {key}\r\n\r\n").encode() for key in keys]


async def open_pool(
    host: str, port: int, count: int, stats: Stats, idle: deque[Connection], wake: asyncio.Event
) -> list[Connection]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(count):
        _, proto = await loop.create_connection(lambda: Connection(stats, idle, wake), host, port)
        conns.append(proto)
        idle.append(proto)
    return conns


async def next_idle(idle: deque[Connection], wake: asyncio.Event) -> Connection:
    while not idle:
        wake.clear()
        await wake.wait()
    return idle.popleft()


async def dispatch(
    requests: list[bytes],
    rate: float,
    duration: float,
    start: int,
    idle: deque[Connection],
    wake: asyncio.Event,
) -> None:
    """Send request i at start + i / rate; late sends keep their scheduled timestamp."""
    interval = 1e9 / rate
    total = int(rate * duration)
    for i in range(total):
        due = start + int(i * interval)
        delay = due - time.perf_counter_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        conn = await next_idle(idle, wake)
        conn.send(requests[i % len(requests)], due)


async def drain(conns: list[Connection], wake: asyncio.Event) -> None:
    """Wait for the responses still in flight (the caller bounds this with a timeout)."""
    while any(c.busy for c in conns):
        wake.clear()
        await wake.wait()


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile in milliseconds."""
    if not sorted_ns:
        return float("nan")
    rank = min(len(sorted_ns), max(1, math.ceil(q / 100 * len(sorted_ns)))) - 1
    return sorted_ns[rank] / 1e6


def summarize(stats: Stats, sent: int, elapsed: float, unanswered: int) -> dict[str, object]:
    lat = sorted(stats.latencies)
    lags = sorted(stats.lags)
    ok = sum(n for code, n in stats.statuses.items() if 200 <= code < 400)
    return {
        "sent": sent,
        "completed": len(lat),
        "ok": ok,
        "non_2xx_3xx": len(lat) - ok,
        "errors": stats.errors + unanswered,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "achieved_rps": round(len(lat) / elapsed, 1) if elapsed > 0 else 0.0,
        **{f"p{name}_ms": round(percentile(lat, q), 3) for name, q in PERCENTILES},
        "max_ms": round(lat[-1] / 1e6, 3) if lat else float("nan"),
        "lag_p50_ms": round(percentile(lags, 50), 3),
        "lag_p99_ms": round(percentile(lags, 99), 3),
    }


PERCENTILES = (("50", 50.0), ("90", 90.0), ("99", 99.0), ("999", 99.9))


async def run(
    url: str, rate: float, duration: float, connections: int, header: str | None, keys: list[str]
) -> dict[str, object]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stats, idle, wake = Stats(), deque[Connection](), asyncio.Event()
    conns = await open_pool(host, port, connections, stats, idle, wake)
    requests = build_requests(url, header, keys)
    began = time.perf_counter_ns() + 10_000_000
    await dispatch(requests, rate, duration, began, idle, wake)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5.0):
            await drain(conns, wake)
    elapsed = (stats.last_done - began) / 1e9
    unanswered = sum(1 for c in conns if c.busy)
    for conn in conns:
        conn.abort()
    await asyncio.gather(*(c.closed for c in conns))
    return summarize(stats, len(stats.lags), elapsed, unanswered)


def read_keys(path: str | None) -> list[str]:
    if path is None:
        return []
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Open-loop paced HTTP/1.1 load generator (prints JSON).")
    p.add_argument("url")
    p.add_argument("--rate", type=float, default=2000.0, help="requests per second (default 2000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default 10)")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    p.add_argument("--keys-file", help="one key per line, rotated across requests")
    p.add_argument("--header", help="header carrying the key (with --keys-file)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="default uvloop")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    coro = run(args.url, args.rate, args.duration, args.connections, args.header, read_keys(args.keys_file))
    runner = uvloop.run if HAVE_UVLOOP and args.loop == "uvloop" else asyncio.run
    print(json.dumps(runner(coro)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
