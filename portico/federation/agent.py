"""The federation agent (``portico agent``): one outbound WebSocket link per configured provider to
the management API's ``/integration-controller``, answering its commands with the provider.

A link says HELLO first (``{targetId: integrationId, provider}``), then answers HEALTH_CHECK,
PRIMARY, DISCOVER, START_INGEST (followed by INGEST batches it sends), SUBSCRIBE, UNSUBSCRIBE and
GOOD_BYE. A lost link is re-opened with exponential backoff from 1 s to 5 min."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

import portico
from portico.federation import protocol as p
from portico.federation.agent_config import AgentConfig, Connector, Provider
from portico.federation.aws import AwsProvider, Discovery, ProviderError

log = logging.getLogger("portico.agent")
INGEST_BATCH = 10
BACKOFF_MIN, BACKOFF_MAX = 1.0, 300.0


class WsTransport:
    """A websockets connection as a protocol transport."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def receive(self) -> str | None:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            return None
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)


@dataclass
class LinkState:
    integration_id: str
    provider: str
    connected: bool = False
    primary: bool = False
    endpoint: str | None = None
    last_error: str | None = None
    last_provider_error: str | None = None
    connected_since: float | None = None
    reconnects: int = 0
    commands: dict[str, int] = field(default_factory=dict)


class ProviderLink:
    def __init__(self, provider: Provider, connector: Connector) -> None:
        self.provider_config = provider
        self.connector = connector
        self.provider = AwsProvider(provider.aws)
        self.state = LinkState(provider.integration_id, provider.type)
        self._channel: p.Channel | None = None
        self._ingests: set[asyncio.Task[None]] = set()
        self._stopping = False

    # -- command handlers -------------------------------------------------------------------------

    def _count(self, command: str) -> None:
        self.state.commands[command] = self.state.commands.get(command, 0) + 1

    async def _call(self, fn: Any, *args: Any) -> Any:
        try:
            result = await asyncio.to_thread(fn, *args)
        except ProviderError as exc:
            self.state.last_provider_error = str(exc)
            raise p.CommandFailed(str(exc)) from exc
        return result

    async def on_health_check(self, payload: p.Payload) -> p.Payload:
        self._count(p.HEALTH_CHECK)
        detail = self.state.last_provider_error or "ok"
        return {"healthy": True, "detail": detail, "agentVersion": portico.__version__}

    async def on_primary(self, payload: p.Payload) -> p.Payload:
        self.state.primary = bool(payload.get("primary"))
        return {}

    async def on_good_bye(self, payload: p.Payload) -> p.Payload:
        if not payload.get("reconnect", True):
            self._stopping = True
        return {}

    async def _discover(self) -> Discovery:
        found: Discovery = await self._call(self.provider.discover)
        self.state.last_provider_error = "; ".join(found.errors) if found.errors else None
        return found

    async def on_discover(self, payload: p.Payload) -> p.Payload:
        """The listing pass only: the preview needs no definitions (no GetExport)."""
        self._count(p.DISCOVER)
        found = await self._discover()
        return {"apis": found.apis, "isPartialDiscovery": found.partial, "errors": found.errors}

    async def on_start_ingest(self, payload: p.Payload) -> p.Payload:
        """List, answer with what will come (and whether the listing is complete), then export and
        send the APIs one INGEST batch at a time."""
        self._count(p.START_INGEST)
        job = payload.get("ingestJobId")
        wanted = payload.get("apiIds") or []
        if not isinstance(job, str) or not isinstance(wanted, list):
            raise p.CommandFailed("START_INGEST needs ingestJobId and apiIds (a list of uniqueIds; empty for all)")
        found = await self._discover()
        if found.errors and not found.apis:
            raise p.CommandFailed("discovery failed: " + "; ".join(found.errors))
        apis = found.apis
        if wanted:
            chosen = set(map(str, wanted))
            apis = [a for a in apis if a["uniqueId"] in chosen]
        task = asyncio.create_task(self._send_ingest(job, apis))
        self._ingests.add(task)
        task.add_done_callback(self._ingests.discard)
        listed = [{"uniqueId": a["uniqueId"], "planIds": [str(plan["id"]) for plan in a.get("plans") or []]}
                  for a in found.apis]
        return {"ingestJobId": job, "total": len(apis), "isPartialDiscovery": found.partial,
                "errors": found.errors, "listed": listed}

    async def _send_ingest(self, job: str, apis: list[dict[str, Any]]) -> None:
        channel = self._channel
        if channel is None:
            return
        try:
            batches = [apis[i:i + INGEST_BATCH] for i in range(0, len(apis), INGEST_BATCH)] or [[]]
            for i, batch in enumerate(batches):
                exported, errors = await asyncio.to_thread(self.provider.export, batch) if batch else ([], [])
                if errors:
                    self.state.last_provider_error = errors[-1]
                await channel.request(p.INGEST, {"ingestJobId": job, "apis": exported, "errors": errors,
                                                 "done": i == len(batches) - 1})
        except p.CommandFailed as exc:
            log.warning("ingest job %s for integration %s failed: %s", job, self.state.integration_id, exc)

    async def on_subscribe(self, payload: p.Payload) -> p.Payload:
        self._count(p.SUBSCRIBE)
        sub = payload.get("subscription")
        if not isinstance(sub, dict) or not isinstance(sub.get("metadata"), dict):
            raise p.CommandFailed("SUBSCRIBE needs subscription.metadata with the API's connection details")
        for key in ("id", "planId"):
            if not sub.get(key):
                raise p.CommandFailed(f"SUBSCRIBE needs subscription.{key}")
        result = await self._call(self.provider.subscribe, sub["metadata"], sub)
        return {"subscription": {"id": sub["id"], "apiKey": result["apiKey"], "metadata": result["metadata"]}}

    async def on_unsubscribe(self, payload: p.Payload) -> p.Payload:
        self._count(p.UNSUBSCRIBE)
        sub = payload.get("subscription")
        if not isinstance(sub, dict) or not isinstance(sub.get("metadata"), dict):
            raise p.CommandFailed("UNSUBSCRIBE needs subscription.metadata from SUBSCRIBE")
        await self._call(self.provider.unsubscribe, sub["metadata"])
        return {}

    def handlers(self) -> dict[str, p.Handler]:
        return {p.HEALTH_CHECK: self.on_health_check, p.PRIMARY: self.on_primary, p.GOOD_BYE: self.on_good_bye,
                p.DISCOVER: self.on_discover, p.START_INGEST: self.on_start_ingest, p.SUBSCRIBE: self.on_subscribe,
                p.UNSUBSCRIBE: self.on_unsubscribe}

    # -- the link ---------------------------------------------------------------------------------

    async def _session(self, endpoint: str) -> tuple[int | None, str]:
        """One link from connect to close; the close code and reason the management API gave."""
        headers = list(self.connector.headers)
        tls = self.connector.tls if endpoint.startswith("wss:") else None
        async with connect(endpoint, additional_headers=headers, ssl=tls,
                           open_timeout=15, ping_interval=5, ping_timeout=20,
                           max_size=p.MAX_FRAME, user_agent_header=f"portico-agent/{portico.__version__}") as ws:
            channel = p.Channel(WsTransport(ws), self.handlers())
            self._channel = channel
            runner = asyncio.create_task(channel.run())
            try:
                await channel.request(p.HELLO, {"targetId": self.state.integration_id, "provider": self.state.provider,
                                                "agentVersion": portico.__version__,
                                                "agentId": f"agent-{uuid.uuid4().hex[:8]}"})
                self.state.connected, self.state.endpoint = True, endpoint
                self.state.connected_since, self.state.last_error = time.time(), None
                log.info("integration %s: connected to %s", self.state.integration_id, endpoint)
                await runner
                return ws.close_code, ws.close_reason or ""
            finally:
                self.state.connected = self.state.primary = False
                self._channel = None
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner

    async def _attempt(self, endpoint: str) -> bool:
        """One connection attempt; sets ``state.last_error``. True when the management API refused
        the agent's credentials (a revoked or expired token, a lost privilege)."""
        try:
            code, reason = await self._session(endpoint)
        except p.CommandFailed as exc:  # HELLO refused: wrong integration, provider or permission
            self.state.last_error = f"HELLO refused: {exc}"
            return True
        except InvalidStatus as exc:
            status = exc.response.status_code
            self.state.last_error = f"connection refused by the management API: HTTP {status}"
            if status in (401, 403):
                body = exc.response.body.decode("utf-8", "replace")[:300] if exc.response.body else ""
                self.state.last_error += f" ({body}); check the token in the connector's Authorization header"
            return status in (401, 403)
        except ssl.SSLCertVerificationError as exc:
            self.state.last_error = (f"TLS verification of {endpoint} failed: {exc.verify_message or exc}; the "
                                     "management API's certificate is not trusted (see the connector's "
                                     "ssl.truststore setting)")
            return False
        except ssl.SSLError as exc:
            self.state.last_error = f"TLS handshake with {endpoint} failed: {exc.reason or exc}"
            return False
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
            self.state.last_error = f"cannot reach {endpoint}: {exc or type(exc).__name__}"
            return False
        except Exception as exc:  # one link's surprise must not stop the agent: report it and retry
            log.debug("integration %s: link failure", self.state.integration_id, exc_info=True)
            self.state.last_error = f"the link to {endpoint} failed: {type(exc).__name__}: {exc}"
            return False
        if code in (p.CLOSE_UNAUTHORIZED, p.CLOSE_FORBIDDEN):
            self.state.last_error = f"the management API closed the link (code {code}): {reason}"
            return True
        self.state.last_error = "the management API closed the link" + (f" ({reason})" if reason else "")
        return False

    async def run(self) -> None:
        delay = BACKOFF_MIN
        index = 0
        while not self._stopping:
            endpoint = self.connector.endpoints[index % len(self.connector.endpoints)]
            began = time.monotonic()
            refused = await self._attempt(endpoint)
            if self._stopping:
                break
            if time.monotonic() - began > 60 and not refused:  # the link was up for a while: start over gently
                delay = BACKOFF_MIN
            (log.error if refused else log.warning)("integration %s: %s; retrying in %.0f s",
                                                    self.state.integration_id, self.state.last_error, delay)
            self.state.reconnects += 1
            index += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def stop(self) -> None:
        self._stopping = True


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.links = [ProviderLink(provider, config.connector) for provider in config.providers]

    def status(self) -> dict[str, Any]:
        links = []
        for link in self.links:
            s = link.state
            links.append({"integrationId": s.integration_id, "provider": s.provider,
                          "status": "CONNECTED" if s.connected else "DISCONNECTED", "primary": s.primary,
                          "endpoint": s.endpoint, "lastError": s.last_error,
                          "lastProviderError": s.last_provider_error, "reconnects": s.reconnects})
        healthy = all(link.state.connected for link in self.links)
        return {"status": "UP" if healthy else "DOWN", "version": portico.__version__, "links": links}

    def metrics(self) -> str:
        lines = ["# TYPE portico_agent_link_connected gauge"]
        for link in self.links:
            s = link.state
            lines.append(f'portico_agent_link_connected{{integration="{s.integration_id}"}} {int(s.connected)}')
        lines.append("# TYPE portico_agent_link_reconnects_total counter")
        for link in self.links:
            s = link.state
            lines.append(f'portico_agent_link_reconnects_total{{integration="{s.integration_id}"}} {s.reconnects}')
        lines.append("# TYPE portico_agent_commands_total counter")
        for link in self.links:
            for command, count in sorted(link.state.commands.items()):
                lines.append(f'portico_agent_commands_total{{integration="{link.state.integration_id}",'
                             f'command="{command}"}} {count}')
        return "\n".join(lines) + "\n"

    async def run(self) -> None:
        from portico.federation.agent_health import serve_health

        health = await serve_health(self) if self.config.health.enabled else None
        try:
            await asyncio.gather(*(link.run() for link in self.links))
        finally:
            for link in self.links:
                link.stop()
            if health is not None:
                health.close()
                await health.wait_closed()
