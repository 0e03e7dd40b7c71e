"""A provider's catastrophic regular expression fails the call quickly instead of stalling the node."""

from __future__ import annotations

import time

import pytest

from portico.policies.payload import PayloadError
from portico.policies.payload.user_regex import compile_user_regex, user_findall, user_search, user_sub
from tests.gateway.test_runtime import add_action
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for

EVIL = "(a|aa)+$"  # exponential on "aaa...!" even for the regex engine
BAIT = "a" * 40 + "!"


def test_time_limited_helpers() -> None:
    pattern = compile_user_regex(EVIL)
    started = time.monotonic()
    with pytest.raises(PayloadError, match="took longer"):
        user_sub(pattern, "x", BAIT)
    with pytest.raises(PayloadError):
        user_search(pattern, BAIT)
    assert user_findall(pattern, BAIT) == []
    assert time.monotonic() - started < 2
    assert user_sub(compile_user_regex(r"\d+"), "#", "a1b22") == "a#b#"
    with pytest.raises(ValueError, match="invalid regular expression"):
        compile_user_regex("(unclosed")


async def test_masking_with_a_catastrophic_pattern_answers_fast(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "requestDataMasking", "requestPayloadProcessing", [
        {"templateKey": "regexMasking", "parameters": [{"templateKey": "maskingCriteria", "parameters": [
            {"templateKey": "action", "values": [EVIL]}, {"templateKey": "maskingType", "values": ["mask"]},
            {"templateKey": "maskValue", "values": ["*"]}]}]}])
    started = time.monotonic()
    r = await node.gw.post("/Echo/1.0/echo", content=BAIT.encode(), headers={"content-type": "text/plain"})
    assert r.status_code == 400, r.text
    assert time.monotonic() - started < 2
