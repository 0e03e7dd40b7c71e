"""Federation test helpers: integrations and tokens through the management API, agents in-process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from portico.federation.agent import Agent
from portico.federation.agent_config import load
from tests.support.node import Node

FAST_HEALTH = 0.3


def fast_links(node: Node, health: float = FAST_HEALTH, reply_timeout: float = 5.0) -> None:
    """Short health-check interval and reply timeout on the node's controller (tests must be quick)."""
    controller = node.portico.federation
    assert controller is not None
    controller.health_interval = health
    controller.reply_timeout = reply_timeout


async def create_integration(node: Node, name: str = "aws", provider: str = "aws-api-gateway") -> str:
    r = await node.admin.post("/integrations", json={"name": name, "description": "test", "provider": provider})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def create_token(node: Node, user: str = "Administrator") -> str:
    r = await node.admin.post(f"/users/{user}/tokens", json={"name": f"agent-{time.monotonic_ns()}"})
    assert r.status_code in (200, 201), r.text
    body = r.json()
    secret = body.get("token") or body.get("secret") or body.get("value")
    assert isinstance(secret, str), body
    return secret


def agent_env(node: Node, integration_id: str, token: str, aws_endpoint: str, regions: str = "eu-west-1",
              accept_without_plan: bool = False, provider: str = "aws-api-gateway") -> dict[str, str]:
    return {
        "gravitee_integration_connector_ws_endpoints_0": f"{node.base}/integration-controller",
        "gravitee_integration_connector_ws_headers_0_name": "Authorization",
        "gravitee_integration_connector_ws_headers_0_value": f"bearer {token}",
        "gravitee_integration_providers_0_type": provider,
        "gravitee_integration_providers_0_integrationId": integration_id,
        "gravitee_integration_providers_0_configuration_accessKeyId": "testing",
        "gravitee_integration_providers_0_configuration_secretAccessKey": "testing",
        "gravitee_integration_providers_0_configuration_region": regions,
        "gravitee_integration_providers_0_configuration_acceptApiWithoutUsagePlan": str(accept_without_plan).lower(),
        "gravitee_integration_providers_0_configuration_endpointUrl": aws_endpoint,
        "gravitee_services_core_http_enabled": "false",
    }


@contextlib.asynccontextmanager
async def running_agent(env: dict[str, str]) -> AsyncIterator[Agent]:
    agent = Agent(load(env))
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        for link in agent.links:
            link.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@contextlib.asynccontextmanager
async def linked_agent(node: Node, aws_endpoint: str, name: str = "aws") -> AsyncIterator[str]:
    """A new integration ``name`` with fast links and its agent running and connected; yields its id."""
    fast_links(node)
    iid = await create_integration(node, name=name)
    async with running_agent(agent_env(node, iid, await create_token(node), aws_endpoint)):
        await eventually(lambda: connected(node, iid))
        yield iid


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


async def status_of(node: Node, integration_id: str) -> dict[str, Any]:
    r = await node.admin.get(f"/integrations/{integration_id}")
    assert r.status_code == 200, r.text
    status: dict[str, Any] = r.json()["status"]
    return status


async def connected(node: Node, integration_id: str) -> bool:
    return (await status_of(node, integration_id))["agentStatus"] == "CONNECTED"


async def ingest(node: Node, integration_id: str, api_ids: list[str] | None = None) -> dict[str, Any]:
    """Ingest (all, or ``api_ids``) and wait for the job; the finished job."""
    body = {"apiIds": api_ids} if api_ids is not None else None
    r = await node.admin.post(f"/integrations/{integration_id}/ingest", json=body)
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    assert job["status"] == "SUCCEEDED", job
    return job



class Switch:
    """A loopback TCP forwarder that can be switched off and on again: the endpoint behind it
    (AWS, here moto) becomes unreachable for a while."""

    def __init__(self, target: str) -> None:
        host, _, port = target.split("//", 1)[1].partition(":")
        self.host, self.port = host, int(port.rstrip("/"))
        self.server: asyncio.Server | None = None
        self.listen_port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    async def on(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.listen_port}"

    async def off(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self._writers):  # kept-alive connections go too
            writer.close()
        self.server = None
