"""``--redis-prefix``: nodes counting under one prefix share a limit, nodes under another prefix
keep their own counts, on the real Redis at 127.0.0.1:6379 (two processes with one prefix:
``tests/admin/test_packages.py::test_two_processes_share_one_limit_through_redis``)."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from portico.app import Portico, ServeOptions, StartupError
from portico.counters import REDIS_PREFIX_END, load_backend, window_for
from portico.counters.survival import QuotaSurvival
from portico.domain.plan_limits import QUOTA_PREFIX
from portico.store import Store
from portico.store.tables import quota_counters
from tests.gateway.test_runtime import add_action
from tests.policies.test_throttle import throttle
from tests.support.node import Node, running_node
from tests.support.upstream import Upstream, spec_for

REDIS_URL = "redis://127.0.0.1:6379/0"


async def passed(nodes: list[Node], n: int) -> int:
    """Fire ``n`` calls spread over ``nodes`` at once; how many the throttle let through."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:
        rs = await asyncio.gather(*(client.get(f"{nodes[i % len(nodes)].base}/gateway/Echo/1.0/echo")
                                    for i in range(n)))
    assert {r.status_code for r in rs} <= {200, 429}, [r.text for r in rs if r.status_code not in (200, 429)]
    return sum(r.status_code == 200 for r in rs)


async def test_one_prefix_shares_a_limit_another_counts_apart(db_url: str, tmp_path: Path, upstream: Upstream,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())  # nodes of one store
    ours, theirs = (f"portico-test:{uuid.uuid4().hex}:" for _ in range(2))
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        async with AsyncExitStack() as stack:
            # three nodes on one store (so one API, one counter key): a, b under one prefix, c under another
            a, b, c = [await stack.enter_async_context(running_node(db_url, tmp_path / name, redis_url=REDIS_URL,
                                                                    redis_prefix=prefix))
                       for name, prefix in (("a", ours), ("b", ours), ("c", theirs))]
            api = await a.create_api(spec_for(upstream.url))
            await add_action(a, api, "throttle", "LMT", throttle(20))
            for node in (a, b, c):
                await node.reload()
            assert await passed([a, b], 60) == 20  # a and b grant 20 between them
            assert await passed([c], 30) == 20  # c's count started from zero
            assert await passed([a, b, c], 30) == 0
        for prefix in (ours, theirs):  # the count and its "alerted once" flag, under each prefix
            assert len([k async for k in redis.scan_iter(match=f"{prefix}{REDIS_PREFIX_END}thr:{api['id']}:*")]) == 2
    finally:
        for prefix in (ours, theirs):
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
        await redis.aclose()


async def test_a_prefix_with_glob_characters_is_matched_literally() -> None:
    from portico.counters import Window, load_backend

    token = uuid.uuid4().hex
    literal, lookalike = f"portico-test:{token}:[a]*:", f"portico-test:{token}:a-more:"
    window = Window(0, 2_000_000_000_000_000)
    mine, other = (load_backend("redis", url=REDIS_URL, prefix=p) for p in (literal, lookalike))
    try:
        await mine.add("q:x", window, 2)
        await other.add("q:x", window, 5)  # matched by the glob "[a]*" if the prefix were a pattern
        assert [(k, n) for k, _, n in await mine.snapshot("q:")] == [("q:x", 2)]
        await mine.reset("")
        assert await other.get("q:x", window) == 5
    finally:
        await mine.reset("")
        await other.reset("")
        await mine.close()
        await other.close()


async def test_prefixes_that_start_one_another_keep_apart(store: Store) -> None:
    """``P``, ``P2`` and ``Pq:`` (the start of ``P``'s quota keys): each prefix lists, saves,
    restores and clears only its own counters (the names used to be ``<prefix><key>``, so ``P``'s
    ``q:`` scan also matched every key of ``Pq:``, and clearing under ``P`` those of ``P2``)."""
    ours = f"portico-test-{uuid.uuid4().hex}"
    prefixes = (ours, f"{ours}2", f"{ours}{QUOTA_PREFIX}")
    window = window_for(int(time.time() * 1000), 1, "days")
    mine, longer, lookalike = (load_backend("redis", url=REDIS_URL, prefix=p) for p in prefixes)
    key = f"{QUOTA_PREFIX}app:1"
    try:
        for counters, count in ((mine, 2), (longer, 5), (lookalike, 7)):
            await counters.add(key, window, count)
        assert [(k, n) for k, _, n in await mine.snapshot(QUOTA_PREFIX)] == [(key, 2)]
        assert [(k, n) for k, _, n in await mine.snapshot("")] == [(key, 2)]
        await QuotaSurvival(store, mine, QUOTA_PREFIX, 60).save()
        async with store.read() as tx:
            saved = (await tx.connection.execute(select(quota_counters.c.key, quota_counters.c.count))).all()
        assert [tuple(r) for r in saved] == [(key, 2)]
        await mine.reset(key)  # a subscription's quota cleared (admin/subscriptions.py)
        await mine.reset("")
        assert [await c.get(key, window) for c in (mine, longer, lookalike)] == [0, 5, 7]
        assert await QuotaSurvival(store, mine, QUOTA_PREFIX, 60).restore() == 1
        assert [await c.get(key, window) for c in (mine, longer, lookalike)] == [2, 5, 7]
    finally:
        for counters in (mine, longer, lookalike):
            await counters.reset("")
            await counters.close()


@pytest.mark.parametrize(("prefix", "reason"), [("", "empty"), ("a|b:", "must not contain '|'")])
def test_an_empty_prefix_or_one_with_the_end_mark_is_refused(tmp_path: Path, prefix: str, reason: str) -> None:
    with pytest.raises(StartupError, match=f"--redis-prefix .*{reason}"):
        Portico(ServeOptions(port=0, data_dir=tmp_path, redis_url=REDIS_URL, redis_prefix=prefix))
    with pytest.raises(ValueError, match=reason):
        load_backend("redis", url=REDIS_URL, prefix=prefix)
