"""Two management nodes on one PostgreSQL database: one primary agent link per integration across
the nodes, and commands sent to either node run through it (relayed by the node without it)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from portico.federation import relay
from portico.federation.agent import Agent
from portico.federation.ingest import package_id_for
from portico.federation.relay import HEADER, seal
from portico.security.secrets import SecretBox
from portico.store.db import now_ms
from tests.federation.support import (
    agent_env,
    connected,
    create_integration,
    create_token,
    eventually,
    fast_links,
    ingest,
    running_agent,
    status_of,
)
from tests.support.aws import apigw, make_api, make_usage_plan
from tests.support.node import Node, running_node
from tests.support.process import free_port, spawn, wait_healthy


@pytest.fixture
def shared_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes sharing a database share the master key (it also seals relayed commands)."""
    monkeypatch.setenv("PORTICO_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())


@contextlib.asynccontextmanager
async def two_nodes(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    async with running_node(db_url, tmp_path / "a") as a, running_node(db_url, tmp_path / "b") as b:
        fast_links(a)
        fast_links(b)
        yield a, b


def _keys(client: Any) -> list[dict[str, Any]]:
    return list(client.get_api_keys(includeValues=True)["items"])


def _primary(agent: Agent) -> bool:
    return agent.links[0].state.primary


async def _is_primary(agent: Agent) -> bool:
    return _primary(agent)


async def _agents(node: Node, iid: str, count: int) -> list[dict[str, Any]] | None:
    agents: list[dict[str, Any]] = (await status_of(node, iid))["agents"]
    return agents if len(agents) == count else None


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_commands_on_any_node_and_one_primary_across_nodes(db_url: str, tmp_path: Path, fresh: str,
                                                                 shared_key: None) -> None:
    c = apigw(fresh)
    make_usage_plan(c, "Gold", [(make_api(c, "Orders"), "prod")])
    async with two_nodes(db_url, tmp_path) as (a, b):
        iid = await create_integration(a)
        token = await create_token(a)
        async with contextlib.AsyncExitStack() as on_b:
            first = await on_b.enter_async_context(running_agent(agent_env(b, iid, token, fresh)))
            await eventually(lambda: connected(a, iid), what="CONNECTED through node B")

            # node A holds no link: discovery, ingestion, its job and a subscription are relayed to B
            r = await a.admin.post(f"/integrations/{iid}/discover")
            assert r.status_code == 200, r.text
            assert [api["state"] for api in r.json()["apis"]] == ["NEW"]
            job = await ingest(a, iid)
            assert job["created"] == 1
            assert b.portico.federation is not None and job["id"] in b.portico.federation.ingestions.jobs
            r = await a.admin.get(f"/integrations/{iid}/ingestJobs/{job['id']}")
            assert r.status_code == 200 and r.json()["status"] == "SUCCEEDED", r.text
            plan_id = (await a.admin.get(f"/packages/{package_id_for(iid)}")).json()["packageResponse"]["planIds"][0]
            r = await a.admin.post("/subscriptions", json={"packageId": package_id_for(iid), "planId": plan_id,
                                                           "applicationName": "shop"})
            assert r.status_code == 201, r.text
            app_id = r.json()["id"]
            (key,) = _keys(c)
            assert r.json()["federatedAccess"]["apiKey"] == key["value"]

            # a second agent, linked to node A: the first (on B) stays the one primary
            async with running_agent(agent_env(a, iid, token, fresh)) as second:
                agents = await eventually(lambda: _agents(a, iid, 2), what="two agents")
                await eventually(lambda: _is_primary(first), what="the first agent primary")
                await asyncio.sleep(0.5)  # a few lease rounds: nobody changes their mind
                assert _primary(first) and not _primary(second)
                agents = (await status_of(b, iid))["agents"]
                assert a.portico.federation is not None
                assert [(x["node"], x["primary"]) for x in agents] == [(b.portico.federation.node_id, True),
                                                                         (a.portico.federation.node_id, False)]

                await on_b.aclose()  # the primary's link goes: the agent on node A takes over
                await eventually(lambda: _is_primary(second), timeout=5, what="failover to the agent on A")
                # node B now holds no link: unsubscribing there runs on A's agent
                r = await b.admin.delete(f"/subscriptions/{app_id}")
                assert r.status_code == 204, r.text
                assert _keys(c) == []

            await eventually(lambda: _disconnected(a, iid), what="no agent left")
            r = await b.admin.post(f"/integrations/{iid}/discover")
            assert r.status_code == 409 and "no agent is connected" in r.json()["errorDetails"], r.text


async def _disconnected(node: Node, iid: str) -> bool:
    return not await connected(node, iid)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_node_that_dies_hands_the_primary_over(db_url: str, tmp_path: Path, fresh: str, shared_key: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Node B (a `portico serve` process) holds the primary link and is killed: its rows are not
    deleted, yet commands on node A go to A's own agent at once (B cannot be reached), and A's agent
    becomes primary once B's rows are stale (three lease rounds; seconds)."""
    monkeypatch.setenv("PORTICO_FEDERATION_HEALTH_INTERVAL", "0.3")
    make_usage_plan(apigw(fresh), "Gold", [(make_api(apigw(fresh), "Orders"), "prod")])
    async with running_node(db_url, tmp_path / "a") as a:
        fast_links(a)
        iid = await create_integration(a)
        token = await create_token(a)
        port = free_port()
        proc = spawn(["serve", "--port", str(port), "--data-dir", str(tmp_path / "b"), "--db", db_url])
        try:
            await asyncio.to_thread(wait_healthy, port, proc)
            env_b = {**agent_env(a, iid, token, fresh),
                     "gravitee_integration_connector_ws_endpoints_0": f"http://127.0.0.1:{port}/integration-controller"}
            async with running_agent(env_b) as first:
                await eventually(lambda: _is_primary(first), what="the agent on B primary")
                async with running_agent(agent_env(a, iid, token, fresh)) as second:
                    await eventually(lambda: _agents(a, iid, 2), what="two agents")
                    assert not _primary(second)
                    proc.kill()
                    proc.wait(5)
                    r = await a.admin.post(f"/integrations/{iid}/discover")
                    assert r.status_code == 200 and r.json()["total"] == 1, r.text
                    await eventually(lambda: _is_primary(second), timeout=10, what="failover to the agent on A")
                    (left,) = (await status_of(a, iid))["agents"]
                    assert left["primary"] and left["node"] == a.portico.federation.node_id  # type: ignore[union-attr]
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_refused_relay_goes_to_the_next_link(db_url: str, tmp_path: Path, fresh: str, shared_key: None,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Node B holds the primary link but refuses node A's relay tokens (401: here, another master key):
    the command surely did not run there, so node A sends it through its own standby link instead of
    answering 503. Nodes on PostgreSQL advertising a loopback URL warn about it at start."""
    make_usage_plan(apigw(fresh), "Gold", [(make_api(apigw(fresh), "Orders"), "prod")])
    with caplog.at_level(logging.WARNING, logger="portico.federation.controller"):
        async with two_nodes(db_url, tmp_path) as (a, b):
            assert "other machines sharing the database cannot reach" in caplog.text
            iid = await create_integration(a)
            token = await create_token(a)
            async with running_agent(agent_env(b, iid, token, fresh)) as first:
                await eventually(lambda: _is_primary(first), what="the agent on B primary")
                async with running_agent(agent_env(a, iid, token, fresh)) as second:
                    await eventually(lambda: _agents(a, iid, 2), what="two agents")
                    assert not _primary(second)
                    assert b.portico.federation is not None
                    b.portico.federation.relay.box = SecretBox(os.urandom(32))
                    r = await a.admin.post(f"/integrations/{iid}/discover")
                    assert r.status_code == 200 and r.json()["total"] == 1, r.text


async def test_relayed_commands_need_the_shared_master_key(sqlite_node: Node) -> None:
    """Every refusal is the same fixed 401 (the reason, which may name this node's master-key id, goes
    to the log only); a token is good once, for its integration, operation, body and node."""
    iid = await create_integration(sqlite_node)
    other_iid = await create_integration(sqlite_node, name="other")
    assert sqlite_node.portico.federation is not None
    here = sqlite_node.portico.federation.node_id
    box = sqlite_node.portico.secrets

    def url(integration_id: str) -> str:
        return f"{sqlite_node.base}/rest/apigateway/integrations/{integration_id}/relay"

    body = orjson.dumps({"op": "command", "type": "DISCOVER", "payload": {}})
    refused = {"errorDetails": "relay token refused"}
    async with httpx.AsyncClient() as client:
        attempts = [
            (url(iid), body, {}),  # no token
            (url(iid), body, {HEADER: seal(SecretBox(os.urandom(32)), body, iid, "command", here)}),  # other key
            (url(iid), b'{"op": "job"}', {HEADER: seal(box, body, iid, "command", here)}),  # body altered
            (url(iid), body, {HEADER: seal(box, body, iid, "job", here)}),  # operation altered
            (url(other_iid), body, {HEADER: seal(box, body, iid, "command", here)}),  # another integration
            (url(iid), body, {HEADER: seal(box, body, iid, "command", "node-elsewhere")}),  # another node
        ]
        for target, content, headers in attempts:
            r = await client.post(target, content=content, headers=headers)
            assert r.status_code == 401 and r.json() == refused, (target, content, r.text)
        token = seal(box, body, iid, "command", here)
        r = await client.post(url(iid), content=body, headers={HEADER: token})
        assert r.status_code == 200 and r.json()["outcome"] == "UNAVAILABLE", r.text
        r = await client.post(url(iid), content=body, headers={HEADER: token})  # the same request again
        assert r.status_code == 401 and r.json() == refused, r.text
        # a token is checked before the body is read: a large body with a bad token is refused as such
        r = await client.post(url(iid), content=b"x" * 5_000_000, headers={HEADER: "nonsense"})
        assert r.status_code == 401 and r.json() == refused, r.text


def test_relay_tokens_allow_for_clock_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiving node's clock may run ahead of the sender's: a token sealed 60 s ago by its
    sender's clock (its expiry just passed here) still opens, within the allowed difference."""
    box = SecretBox(os.urandom(32))
    body = b'{"op": "job"}'
    token = seal(box, body, "i1", "job", "n1")
    later = now_ms() + relay.SKEW_MS // 2 + 60_000
    monkeypatch.setattr(relay, "now_ms", lambda: later)
    relay.Tokens().open(box, token, "i1", "n1")
    monkeypatch.setattr(relay, "now_ms", lambda: later + relay.SKEW_MS)
    with pytest.raises(relay.RelayRefused):
        relay.Tokens().open(box, token, "i1", "n1")
    behind = later - 60_000 - relay.SKEW_MS // 2 - relay.SKEW_MS - 5_000  # the receiver's clock far behind
    monkeypatch.setattr(relay, "now_ms", lambda: behind)
    with pytest.raises(relay.RelayRefused):
        relay.Tokens().open(box, token, "i1", "n1")
