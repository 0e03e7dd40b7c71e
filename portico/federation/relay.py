"""Commands for an integration whose primary agent link another node holds.

Nodes sharing one database elect one primary link per integration (the oldest live row of
``integration_links``, see :meth:`portico.federation.controller.Controller.elect`). A management
request on a node without that link is *relayed*: the node posts the command to the holding
node's ``POST /rest/apigateway/integrations/{id}/relay`` and answers with its result, so every
node gives the same answers, status codes and errors as the holding node.

- **Addresses.** Each node records the URL others reach it at (asset kind ``federationNode``,
  keyed by node id; ``PORTICO_NODE_URL``, else ``http://<listen host>:<port>``, with the host's
  name for a wildcard listen address). Not configuration: writes leave the revision alone.
- **Trust.** Nodes sharing a database share the master key (:mod:`portico.security.secrets`); a
  relayed request carries ``X-Portico-Relay``: the body's SHA-256 and an expiry, sealed with that
  key. The route needs no user credentials: the relaying node has authorized its caller already.
- **Operations.** ``command`` (DISCOVER, SUBSCRIBE, UNSUBSCRIBE: one command and its reply),
  ``ingest`` (an ingestion job started and awaited on the holding node, where its INGEST batches
  arrive) and ``job`` (a job's state, for ``GET .../ingestJobs/{jobId}`` on another node). The
  holding node runs them on its own links only (a relay is never relayed again).
- **Outcomes.** The answer is 200 with ``outcome`` SUCCEEDED, ERROR (the agent's error), TIMEOUT
  (no reply within the reply timeout), UNAVAILABLE (no link there any more) or UNKNOWN (no such
  job); the relaying side raises what a local command would. A node that cannot be reached or
  refuses the relay raises :class:`RelayFailed` (503); when the command cannot have been delivered
  the controller tries the next candidate link first."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from portico.federation import protocol as p
from portico.federation.protocol import LinkUnavailable
from portico.federation.status import FORGET_MS, LinkRow
from portico.security.secrets import SecretBox, SecretError
from portico.store import Store
from portico.store.db import now_ms

if TYPE_CHECKING:
    from portico.federation.controller import Controller

log = logging.getLogger("portico.federation.relay")
HEADER = "x-portico-relay"
NODE = "federationNode"
URL_ENV = "PORTICO_NODE_URL"
_CONTEXT = "federation/relay"
_TTL_MS = 60_000  # a relayed request older than this is refused (a copy replayed later)
_CONNECT = 5.0  # a node that does not accept the connection by then is taken for gone
_SLACK = 10.0  # the relaying side waits this much longer than the holding node's own timeouts


class RelayFailed(LinkUnavailable):
    """The node holding the link could not be reached, or refused the relayed request."""

    def __init__(self, message: str, delivered: bool = True) -> None:
        super().__init__(message)
        self.delivered = delivered  # False: the command surely did not run; another link may be tried


class NoLinkThere(LinkUnavailable):
    """The node had no link for the integration any more: the command did not run there."""

    delivered = False


class RelayRefused(Exception):
    """A relayed request whose token does not open (another master key, expired, altered)."""


def node_url(host: str, port: int) -> str:
    """The URL other nodes reach this one at."""
    configured = os.environ.get(URL_ENV, "").strip().rstrip("/")
    if configured:
        return configured
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def seal(box: SecretBox, body: bytes) -> str:
    claim = {"sha256": hashlib.sha256(body).hexdigest(), "expires": now_ms() + _TTL_MS}
    return box.seal(orjson.dumps(claim), _CONTEXT)


def check(box: SecretBox | None, token: str | None, body: bytes) -> None:
    """RelayRefused unless ``token`` was sealed for ``body`` with this node's master key, recently."""
    if box is None:
        raise RelayRefused("this node relays no federation commands (it has no master key)")
    if not token:
        raise RelayRefused(f"a relayed federation command needs the {HEADER!r} header of another node")
    try:
        claim = orjson.loads(box.open(token, _CONTEXT))
    except (SecretError, ValueError) as exc:
        raise RelayRefused(f"the relay token does not open with this node's master key ({exc}); nodes sharing a "
                           "database must share the master key (PORTICO_MASTER_KEY)") from None
    if not isinstance(claim, dict) or claim.get("sha256") != hashlib.sha256(body).hexdigest():
        raise RelayRefused("the relay token was not made for this request")
    if int(claim.get("expires", 0)) < now_ms():
        raise RelayRefused("the relay token has expired")


# -- node addresses --------------------------------------------------------------------------------

async def advertise(store: Store, node_id: str, url: str, live_nodes: set[str]) -> None:
    """Record this node's URL; forget nodes gone for a day (no live link and not seen since)."""
    async with store.transaction() as tx:
        for row in await tx.list(NODE):
            if row.id not in live_nodes and now_ms() - int(row.body.get("seen", 0)) > FORGET_MS:
                await tx.delete(NODE, row.id)
        await tx.delete(NODE, node_id)
        await tx.insert(NODE, node_id, {"nodeId": node_id, "url": url, "seen": now_ms()})
        tx.changed = False


async def withdraw(store: Store, node_id: str) -> None:
    async with store.transaction() as tx:
        await tx.delete(NODE, node_id)
        tx.changed = False


async def address_of(store: Store, node_id: str) -> str | None:
    async with store.read() as tx:
        row = await tx.get(NODE, node_id)
    url = row.body.get("url") if row is not None else None
    return url if isinstance(url, str) and url else None


# -- the relaying side -----------------------------------------------------------------------------

class Relay:
    """One node's client for relaying commands, and its handler of relayed ones."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.box: SecretBox | None = None
        self.url: str | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def enabled(self) -> bool:
        return self.box is not None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, row: LinkRow, op: dict[str, Any], seconds: float) -> dict[str, Any]:
        assert self.box is not None
        node = row.node_id
        url = await address_of(self.controller.store, node)
        if url is None:
            raise RelayFailed(f"the agent of integration {row.integration_id} is linked to node {node}, whose "
                              "address is not known", delivered=False)
        body = orjson.dumps(op)
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)  # node to node: no proxy from the environment
        try:
            r = await self._client.post(
                f"{url}/rest/apigateway/integrations/{row.integration_id}/relay", content=body,
                headers={HEADER: seal(self.box, body), "content-type": "application/json"},
                timeout=httpx.Timeout(seconds, connect=_CONNECT))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RelayFailed(f"node {node} ({url}), which holds the agent link of integration "
                              f"{row.integration_id}, cannot be reached: {exc!r}", delivered=False) from None
        except httpx.TimeoutException:
            raise p.ReplyTimeout(f"node {node} ({url}) did not answer within {seconds:.0f} s") from None
        except httpx.HTTPError as exc:
            raise RelayFailed(f"the command could not be relayed to node {node} ({url}): {exc!r}") from None
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if r.status_code != 200 or not isinstance(answer, dict):
            detail = answer.get("errorDetails") if isinstance(answer, dict) else r.text[:200]
            raise RelayFailed(f"node {node} ({url}) refused the relayed command ({r.status_code}): {detail}")
        return answer

    @staticmethod
    def _raise(answer: dict[str, Any], node: str) -> None:
        outcome, detail = answer.get("outcome"), str(answer.get("errorDetails") or "")
        if outcome == "ERROR":
            raise p.CommandFailed(detail)
        if outcome == "TIMEOUT":
            raise p.ReplyTimeout(detail)
        if outcome == "UNAVAILABLE":
            raise NoLinkThere(f"{detail} (relayed to node {node})")
        if outcome != "SUCCEEDED":
            raise RelayFailed(f"node {node} answered the relayed command with outcome {outcome!r}")

    async def command(self, row: LinkRow, command: str, payload: p.Payload, wait: float) -> p.Payload:
        answer = await self._post(row, {"op": "command", "type": command, "payload": payload, "wait": wait},
                                  wait + _SLACK)
        self._raise(answer, row.node_id)
        result = answer.get("payload")
        return result if isinstance(result, dict) else {}

    async def ingest(self, row: LinkRow, api_ids: list[str], wait: float) -> tuple[dict[str, Any], bool]:
        """Start an ingestion on the node holding the link; its job view and whether it is done."""
        timeout = self.controller.reply_timeout + wait + _SLACK
        answer = await self._post(row, {"op": "ingest", "apiIds": api_ids, "wait": wait}, timeout)
        self._raise(answer, row.node_id)
        return dict(answer.get("job") or {}), bool(answer.get("done"))

    async def job(self, row: LinkRow, job_id: str) -> dict[str, Any] | None:
        answer = await self._post(row, {"op": "job", "jobId": job_id}, _SLACK)
        if answer.get("outcome") == "UNKNOWN":
            return None
        self._raise(answer, row.node_id)
        return dict(answer.get("job") or {})

    # -- the holding side --------------------------------------------------------------------------

    async def serve(self, integration_id: str, op: dict[str, Any]) -> dict[str, Any]:
        """Run a relayed operation on this node's own links; the outcome to answer."""
        controller = self.controller
        kind = op.get("op")
        try:
            if kind == "command":
                command, payload = op.get("type"), op.get("payload")
                if command not in (p.DISCOVER, p.SUBSCRIBE, p.UNSUBSCRIBE) or not isinstance(payload, dict):
                    return {"outcome": "ERROR", "errorDetails": f"command {command!r} is not relayed"}
                wait = min(float(op.get("wait") or controller.reply_timeout), controller.reply_timeout)
                answer = await controller.request(integration_id, command, payload, wait=wait, local_only=True)
                return {"outcome": "SUCCEEDED", "payload": answer}
            if kind == "ingest":
                api_ids = [str(i) for i in op.get("apiIds") or []]
                job = await controller.ingestions.start(integration_id, api_ids)
                wait = float(op.get("wait") or 0)
                if wait:
                    try:
                        await asyncio.wait_for(job.done.wait(), wait)
                    except TimeoutError:
                        pass
                return {"outcome": "SUCCEEDED", "job": job.view(), "done": job.done.is_set()}
            if kind == "job":
                found = controller.ingestions.jobs.get(str(op.get("jobId")))
                if found is None or found.integration_id != integration_id:
                    return {"outcome": "UNKNOWN"}
                return {"outcome": "SUCCEEDED", "job": found.view()}
        except p.ReplyTimeout as exc:
            return {"outcome": "TIMEOUT", "errorDetails": str(exc)}
        except p.CommandFailed as exc:
            return {"outcome": "ERROR", "errorDetails": str(exc)}
        except LinkUnavailable as exc:
            return {"outcome": "UNAVAILABLE", "errorDetails": str(exc)}
        return {"outcome": "ERROR", "errorDetails": f"unknown relayed operation {kind!r}"}
