"""The agent link on ``/integration-controller``: authentication, HELLO checks, health checks,
status transitions, reconnection, two agents (primary), GOOD_BYE."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import delete, update
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from portico.app import Portico, ServeOptions
from portico.federation import controller as controller_module
from portico.federation import protocol as p
from portico.federation import relay
from portico.federation.agent import WsTransport
from portico.security.privileges import PROVIDERS
from portico.store.tables import integration_links
from tests.federation.support import (
    agent_env,
    connected,
    create_integration,
    create_token,
    eventually,
    fast_links,
    running_agent,
    status_of,
)
from tests.support.keystores import P12_PASS, TRUST_PASS, keystore_fixtures
from tests.support.node import Node


def _url(node: Node) -> str:
    return f"ws://127.0.0.1:{node.portico.port}/integration-controller"


@contextlib.asynccontextmanager
async def raw_link(node: Node, token: str, handlers: dict[str, p.Handler] | None = None,
                   ) -> AsyncIterator[p.Channel]:
    """A hand-driven agent link: the test says HELLO and answers commands itself."""
    async with connect(_url(node), additional_headers={"Authorization": f"bearer {token}"}) as ws:
        channel = p.Channel(WsTransport(ws), handlers or {})
        runner = asyncio.create_task(channel.run())
        try:
            yield channel
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


async def test_missing_or_bad_token_is_refused_before_the_upgrade(sqlite_node: Node) -> None:
    node = sqlite_node
    for headers in ({}, {"Authorization": "bearer ptk_not-a-real-token-0123456789"},
                    {"Authorization": "Basic QWRtaW5pc3RyYXRvcjp0ZXN0LXNlY3JldA=="}):
        with pytest.raises(InvalidStatus) as err:
            async with connect(_url(node), additional_headers=headers):
                pass
        assert err.value.response.status_code == 401
        assert b"errorDetails" in err.value.response.body
    # a plain GET of the path is not an upgrade: the management side does not know it
    r = await httpx.AsyncClient().get(f"{node.base}/integration-controller")
    assert r.status_code == 404


async def test_hello_is_checked(sqlite_node: Node) -> None:
    node = sqlite_node
    iid = await create_integration(node)
    token = await create_token(node)
    cases = [({"targetId": "no-such-integration", "provider": "aws-api-gateway"}, "no integration"),
             ({"targetId": iid, "provider": "azure-api-management"}, "of provider 'aws-api-gateway'"),
             ({"provider": "aws-api-gateway"}, "targetId")]
    for hello, message in cases:
        async with raw_link(node, token) as channel:
            with pytest.raises(p.CommandFailed) as err:
                await channel.request(p.HELLO, hello, wait=5)
            assert message in str(err.value)
            await asyncio.wait_for(channel.closed.wait(), 5)  # the controller closes the link
    assert (await status_of(node, iid))["agentStatus"] == "DISCONNECTED"


async def test_hello_needs_manage_apis(sqlite_node: Node) -> None:
    node = sqlite_node
    iid = await create_integration(node)
    r = await node.admin.post("/users", json={"loginId": "reader", "password": "Reader-pass-1", "firstName": "R",
                                              "lastName": "R", "emailAddresses": ["r@example.com"]})
    assert r.status_code in (200, 201), r.text
    async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=("reader", "Reader-pass-1")) as c:
        r = await c.post("/users/reader/tokens", json={"name": "agent"})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
    async with raw_link(node, token) as channel:
        with pytest.raises(p.CommandFailed) as err:
            await channel.request(p.HELLO, {"targetId": iid, "provider": "aws-api-gateway"}, wait=5)
        assert "Manage APIs" in str(err.value)


async def test_linked_agent_health_checks_unknown_commands_and_an_unhealthy_answer(sqlite_node: Node) -> None:
    node = sqlite_node
    fast_links(node, health=0.2)
    iid = await create_integration(node)
    token = await create_token(node)
    health: dict[str, Any] = {"healthy": True, "detail": "AccessDenied: not allowed to GET /restapis",
                              "agentVersion": "9.9.9"}
    checks: list[int] = []
    primary: list[bool] = []

    async def on_health(payload: p.Payload) -> p.Payload:
        checks.append(1)
        return dict(health)

    async def on_primary(payload: p.Payload) -> p.Payload:
        primary.append(bool(payload["primary"]))
        return {}

    async with raw_link(node, token, {p.HEALTH_CHECK: on_health, p.PRIMARY: on_primary}) as channel:
        answer = await channel.request(p.HELLO, {"targetId": iid, "provider": "aws-api-gateway",
                                                 "agentVersion": "9.9.8", "agentId": "raw"}, wait=5)
        assert answer == {"targetId": iid}
        await eventually(lambda: asyncio.sleep(0, len(checks) >= 2), what="two health checks")
        status = await status_of(node, iid)
        assert status["agentStatus"] == "CONNECTED" and status["agentVersion"] == "9.9.9"
        assert status["lastProviderError"]["message"].startswith("AccessDenied")
        assert primary == [True]
        # a command the controller does not know is answered NO_REPLY
        with pytest.raises(p.CommandFailed) as err:
            await channel.request("TELEPORT", {}, wait=5)
        assert "unknown command type" in str(err.value)
        health["healthy"] = False
        await asyncio.wait_for(channel.closed.wait(), 5)  # an unhealthy agent is dropped
    await eventually(lambda: _disconnected(node, iid), what="DISCONNECTED")


async def _disconnected(node: Node, iid: str) -> bool:
    return not await connected(node, iid)


async def test_stale_heartbeat_reads_disconnected_until_the_holder_refreshes_it(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node, health=1.0)
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid), what="CONNECTED")
        node.portico.federation.health_interval = 3.0  # type: ignore[union-attr]
        async with node.portico.store.engine.begin() as conn:
            await conn.execute(update(integration_links).values(last_heartbeat=1))
        assert (await status_of(node, iid))["agentStatus"] == "DISCONNECTED"
        await eventually(lambda: connected(node, iid), timeout=8, what="refreshed heartbeat")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_agent_loses_and_regains_the_management_api(sqlite_url: str, tmp_path: Path, fresh: str) -> None:
    """Node A holds the link; node B (same database) watches the status while A goes away and comes back."""
    port = _free_port()

    async def start_a() -> Portico:
        a = Portico(ServeOptions(port=port, db_url=sqlite_url, data_dir=tmp_path / "a", shutdown_timeout=1.0))
        await a.start()
        assert a.federation is not None
        a.federation.health_interval = 0.3
        return a

    a = await start_a()
    b = Portico(ServeOptions(port=0, db_url=sqlite_url, data_dir=tmp_path / "b", shutdown_timeout=1.0))
    await b.start()
    watcher = Node(b)
    node_a = Node(a)
    try:
        iid = await create_integration(watcher)
        env = agent_env(node_a, iid, await create_token(watcher), fresh)
        async with running_agent(env) as agent:
            await eventually(lambda: connected(watcher, iid), what="CONNECTED via node A")
            link = agent.links[0]
            # B has no link and relays commands to A, which refuses them: the nodes' master keys differ
            r = await watcher.admin.post(f"/integrations/{iid}/discover")
            assert r.status_code == 503 and "master key" in r.json()["errorDetails"], r.text

            await node_a.close()
            await a.stop()  # GOOD_BYE, links closed, their rows deleted
            await eventually(lambda: _disconnected(watcher, iid), timeout=3, what="DISCONNECTED")
            await eventually(lambda: asyncio.sleep(0, not link.state.connected), what="agent sees the loss")

            a = await start_a()
            node_a = Node(a)
            await eventually(lambda: connected(watcher, iid), timeout=10, what="CONNECTED again")
            # the node records the link on HELLO, the agent once HELLO's answer is back
            await eventually(lambda: asyncio.sleep(0, link.state.connected and link.state.reconnects >= 1),
                             what="agent sees the link again")
    finally:
        await watcher.close()
        await node_a.close()
        await a.stop()
        await b.stop()


async def test_two_agents_one_primary_and_failover(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node)
    iid = await create_integration(node)
    env = agent_env(node, iid, await create_token(node), fresh)
    async with contextlib.AsyncExitStack() as first_stack:
        first = await first_stack.enter_async_context(running_agent(env))
        await eventually(lambda: asyncio.sleep(0, first.links[0].state.primary), what="first is primary")
        async with running_agent(env) as second:
            await eventually(lambda: _agents(node, iid, 2), what="two agents")
            status = await status_of(node, iid)
            assert [a["primary"] for a in status["agents"]] == [True, False]
            assert first.links[0].state.primary and not second.links[0].state.primary
            await first_stack.aclose()  # the primary agent goes away
            await eventually(lambda: asyncio.sleep(0, second.links[0].state.primary), what="failover")
            await eventually(lambda: _agents(node, iid, 1), what="one agent left")
            assert (await status_of(node, iid))["agents"][0]["primary"] is True


async def _agents(node: Node, iid: str, count: int) -> bool:
    return len((await status_of(node, iid))["agents"]) == count


async def test_good_bye_on_shutdown(sqlite_url: str, tmp_path: Path) -> None:
    portico = Portico(ServeOptions(port=0, db_url=sqlite_url, data_dir=tmp_path / "d", shutdown_timeout=1.0))
    await portico.start()
    node = Node(portico)
    said: list[p.Payload] = []

    async def on_bye(payload: p.Payload) -> p.Payload:
        said.append(payload)
        return {}

    try:
        iid = await create_integration(node)
        token = await create_token(node)
        async with raw_link(node, token, {p.GOOD_BYE: on_bye, p.PRIMARY: on_bye}) as channel:
            await channel.request(p.HELLO, {"targetId": iid, "provider": "aws-api-gateway"}, wait=5)
            await node.close()
            await portico.stop()
            await asyncio.wait_for(channel.closed.wait(), 5)
        assert {"targetId": iid, "reconnect": True} in said
    finally:
        await node.close()
        await portico.stop()


async def test_integration_deleted_elsewhere_sends_its_agent_away(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node, health=0.2)
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)) as agent:
        await eventually(lambda: connected(node, iid))
        async with node.portico.store.transaction() as tx:  # as another node would
            await tx.delete("integration", iid)
        link = agent.links[0]
        await eventually(lambda: asyncio.sleep(0, link._stopping and not link.state.connected), what="agent sent away")


async def _provider_with_token(node: Node, login: str) -> tuple[str, str, str]:
    """A user in the API providers group (so holding "Manage APIs") and a token they made themselves:
    (user id, token, token id)."""
    password = "Provider-pass-1"
    r = await node.admin.post("/users", json={"loginId": login, "password": password, "firstName": "P",
                                              "lastName": "P", "emailAddresses": [f"{login}@example.com"]})
    assert r.status_code in (200, 201), r.text
    user_id = r.json().get("id") or r.json()["users"][0]["id"]
    group = (await node.admin.get(f"/groups/{PROVIDERS}")).json()["groups"][0]
    r = await node.admin.put(f"/groups/{PROVIDERS}", json={"userIds": [*group["userIds"], user_id]})
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=(login, password)) as c:
        r = await c.post(f"/users/{login}/tokens", json={"name": "agent"})
        assert r.status_code == 201, r.text
    return user_id, r.json()["token"], r.json()["id"]


async def test_revoking_the_token_closes_the_link_within_a_health_interval(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node, health=0.3)
    iid = await create_integration(node)
    _, token, token_id = await _provider_with_token(node, "prov")
    async with running_agent(agent_env(node, iid, token, fresh)) as agent:
        await eventually(lambda: connected(node, iid))
        link = agent.links[0]
        r = await node.admin.delete(f"/users/prov/tokens/{token_id}")
        assert r.status_code == 204, r.text
        await eventually(lambda: _disconnected(node, iid), timeout=2, what="DISCONNECTED within the interval")
        await eventually(lambda: asyncio.sleep(0, "code 4401" in (link.state.last_error or "")),
                         what="the agent told why")
        assert "no longer valid" in (link.state.last_error or "")
        # and it cannot come back with that token
        await eventually(lambda: asyncio.sleep(0, "HTTP 401" in (link.state.last_error or "")), timeout=5,
                         what="the reconnection refused")
        assert not link.state.connected
        r = await node.admin.post(f"/integrations/{iid}/discover")
        assert r.status_code == 409


async def test_losing_manage_apis_closes_the_link(sqlite_node: Node, fresh: str) -> None:
    node = sqlite_node
    fast_links(node, health=0.3)
    iid = await create_integration(node)
    user_id, token, _ = await _provider_with_token(node, "prov")
    async with running_agent(agent_env(node, iid, token, fresh)) as agent:
        await eventually(lambda: connected(node, iid))
        group = (await node.admin.get(f"/groups/{PROVIDERS}")).json()["groups"][0]
        r = await node.admin.put(f"/groups/{PROVIDERS}",
                                 json={"userIds": [u for u in group["userIds"] if u != user_id]})
        assert r.status_code == 200, r.text
        await eventually(lambda: _disconnected(node, iid), timeout=2, what="DISCONNECTED within the interval")
        link = agent.links[0]
        await eventually(lambda: asyncio.sleep(0, "code 4403" in (link.state.last_error or "")),
                         what="the agent told why")
        assert "Manage APIs" in (link.state.last_error or "")


async def test_commands_check_the_token_before_they_go(sqlite_node: Node, fresh: str) -> None:
    """Between two health checks (here a long interval) a command still finds the token revoked."""
    node = sqlite_node
    fast_links(node, health=60.0)
    iid = await create_integration(node)
    _, token, token_id = await _provider_with_token(node, "prov")
    async with running_agent(agent_env(node, iid, token, fresh)) as agent:
        await eventually(lambda: connected(node, iid))
        assert (await node.admin.post(f"/integrations/{iid}/discover")).status_code == 200
        assert (await node.admin.delete(f"/users/prov/tokens/{token_id}")).status_code == 204
        r = await node.admin.post(f"/integrations/{iid}/discover")
        assert r.status_code == 409 and "no longer valid" in r.json()["errorDetails"], r.text
        link = agent.links[0]
        await eventually(lambda: asyncio.sleep(0, "code 4401" in (link.state.last_error or "")),
                         what="the link closed")


async def test_status_keeps_the_last_agent_after_it_disconnects(node: Node, fresh: str) -> None:
    fast_links(node, health=0.2)
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid))
        await asyncio.sleep(0.5)  # a few heartbeats
        live = await status_of(node, iid)
    await eventually(lambda: _disconnected(node, iid), what="DISCONNECTED")
    gone = await status_of(node, iid)
    assert gone["agentVersion"] == live["agentVersion"] and gone["agentVersion"]
    assert gone["lastHeartbeat"] is not None and gone["lastHeartbeat"] >= live["lastHeartbeat"]
    assert gone["lastConnected"] == live["lastConnected"] is not None
    assert live["lastDisconnected"] is None and gone["lastDisconnected"] >= gone["lastHeartbeat"]
    assert gone["agents"] == []


@contextlib.asynccontextmanager
async def tls_front(node: Node, tmp: Path) -> AsyncIterator[int]:
    """A TLS endpoint (the test CA's 'localhost' certificate) in front of the node: wss:// for the agent."""
    fx = keystore_fixtures()
    key, cert, _ = pkcs12.load_key_and_certificates(fx.read("server.p12"), P12_PASS.encode())
    assert key is not None and cert is not None
    (tmp / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "server.pem", tmp / "server.key")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", node.portico.port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def test_agent_over_tls_trusts_its_truststore_and_reports_a_failed_verification(
        sqlite_node: Node, fresh: str, tmp_path: Path) -> None:
    node = sqlite_node
    fast_links(node)
    fx = keystore_fixtures()
    iid = await create_integration(node)
    token = await create_token(node)
    (tmp_path / "other.pem").write_bytes(fx.other_ca.public_bytes(serialization.Encoding.PEM))
    async with tls_front(node, tmp_path) as port:
        env = agent_env(node, iid, token, fresh)
        env["gravitee_integration_connector_ws_endpoints_0"] = f"https://localhost:{port}/integration-controller"
        ts = "gravitee_integration_connector_ws_ssl_truststore"
        trusted = {**env, f"{ts}_type": "JKS", f"{ts}_path": str(fx.path("trust.jks")), f"{ts}_password": TRUST_PASS}
        async with running_agent(trusted):
            await eventually(lambda: connected(node, iid), what="CONNECTED over wss")
        await eventually(lambda: _disconnected(node, iid), what="DISCONNECTED")

        untrusted = {**env, f"{ts}_type": "PEM", f"{ts}_path": str(tmp_path / "other.pem")}
        async with running_agent(untrusted) as agent:
            link = agent.links[0]
            await eventually(lambda: asyncio.sleep(0, link.state.reconnects >= 1), what="a failed attempt")
            assert "TLS verification" in (link.state.last_error or "") and "truststore" in (link.state.last_error or "")
            await eventually(lambda: asyncio.sleep(0, link.state.reconnects >= 2), timeout=5, what="backed off, again")
            assert not link.state.connected
    assert (await status_of(node, iid))["agentStatus"] == "DISCONNECTED"


async def test_the_lease_writes_a_lost_link_row_again_and_keeps_the_node_seen(sqlite_node: Node, fresh: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A link row gone (its first write failed, or deleted) comes back at the next lease round, and
    the node's address row is marked seen while it holds links (a peer forgets one not seen for a day)."""
    node = sqlite_node
    fast_links(node)
    monkeypatch.setattr(controller_module, "ANNOUNCE_INTERVAL", 0.5)
    store = node.portico.store
    assert node.portico.federation is not None
    node_id = node.portico.federation.node_id
    iid = await create_integration(node)
    async with running_agent(agent_env(node, iid, await create_token(node), fresh)):
        await eventually(lambda: connected(node, iid), what="CONNECTED")
        async with store.engine.begin() as conn:
            await conn.execute(delete(integration_links))
        async with store.transaction() as tx:
            row = await tx.get(relay.NODE, node_id)
            assert row is not None
            await tx.update(relay.NODE, node_id, {**row.body, "seen": 1}, row.revision)
            tx.changed = False
        assert (await status_of(node, iid))["agentStatus"] == "DISCONNECTED"
        await eventually(lambda: connected(node, iid), timeout=5, what="the link row written again")

        async def seen() -> bool:
            async with store.read() as tx:
                row = await tx.get(relay.NODE, node_id)
            return row is not None and int(row.body["seen"]) > 1

        await eventually(seen, timeout=5, what="the node's address marked seen")
