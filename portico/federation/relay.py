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
  relayed request carries ``X-Portico-Relay``: ``{integrationId, op, node, nonce, sha256, expires}``
  sealed with that key. The receiving node checks the token before reading the body: the path's
  integration, its own node id, the expiry (allowing :data:`SKEW_MS` of clock difference) and a
  nonce not seen before (:class:`Tokens`), then the body's hash and operation. A copy of a request
  is refused on its target node, on another node and for another integration. The route needs no
  user credentials (the relaying node has authorized its caller already) and answers any refusal
  with a fixed 401 "relay token refused"; the reason goes to this node's log only (it may name the
  master key's id).
- **Operations.** ``command`` (DISCOVER, SUBSCRIBE, UNSUBSCRIBE: one command and its reply),
  ``ingest`` (an ingestion job started and awaited on the holding node, where its INGEST batches
  arrive) and ``job`` (a job's state, for ``GET .../ingestJobs/{jobId}`` on another node). The
  holding node runs them on its own links only (a relay is never relayed again).
- **Outcomes.** The answer is 200 with ``outcome`` SUCCEEDED, ERROR (the agent's error), TIMEOUT
  (no reply within the reply timeout), UNAVAILABLE (no link there any more) or UNKNOWN (no such
  job); the relaying side raises what a local command would. A node that cannot be reached or
  refuses the relay raises :class:`RelayFailed` (503); when the command cannot have been delivered
  (no connection, a 401 or 503 from the relay route) the controller tries the next candidate link
  first."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
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
_TTL_MS = 60_000  # a relay token is good this long (by the sender's clock)
SKEW_MS = 30_000  # and this much longer: the receiving node's clock may be ahead of the sender's
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


def loopback(url: str) -> bool:
    """Whether ``url`` names this machine only (a loopback address or ``localhost``)."""
    host = (httpx.URL(url).host or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def seal(box: SecretBox, body: bytes, integration_id: str, op: str, node_id: str) -> str:
    """The ``X-Portico-Relay`` token of one relayed request: good once, on node ``node_id`` only, for
    this integration, operation and body, for :data:`_TTL_MS` (by the sender's clock)."""
    claim = {"integrationId": integration_id, "op": op, "node": node_id, "nonce": os.urandom(16).hex(),
             "sha256": hashlib.sha256(body).hexdigest(), "expires": now_ms() + _TTL_MS}
    return box.seal(orjson.dumps(claim), _CONTEXT)


class Tokens:
    """The receiving side's checks of relay tokens, and the nonces it has accepted.

    A token names the node it is for, so nonces are remembered on that node only, each until its
    token can no longer pass (its expiry plus the allowed clock difference); the set is bounded by
    what can arrive in that time, and a node that somehow fills it refuses further relays."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._seen: dict[str, int] = {}  # nonce -> when it may be forgotten (insertion order ~ that order)

    def open(self, box: SecretBox | None, token: str | None, integration_id: str, node_id: str) -> dict[str, Any]:
        """The token's claim, before the body is read; RelayRefused (with the reason, for the log)
        unless it was sealed with this node's master key for this integration and node, recently,
        and was not used before."""
        if box is None:
            raise RelayRefused("this node relays no federation commands (it has no master key)")
        if not token:
            raise RelayRefused(f"no {HEADER!r} header")
        try:
            claim = orjson.loads(box.open(token, _CONTEXT))
        except (SecretError, ValueError) as exc:
            # (the reason names this node's master key id: for the log, never for the caller)
            raise RelayRefused(f"the token does not open with this node's master key ({exc}); nodes sharing "
                               "a database must share the master key (PORTICO_MASTER_KEY)") from None
        if not isinstance(claim, dict) or not isinstance(claim.get("nonce"), str):
            raise RelayRefused("the token is not a relay token of this version")
        if claim.get("integrationId") != integration_id:
            raise RelayRefused(f"the token was made for integration {claim.get('integrationId')!r}, "
                               f"not {integration_id!r}")
        if claim.get("node") != node_id:
            raise RelayRefused(f"the token was made for node {claim.get('node')!r}, not this one ({node_id})")
        now, expires = now_ms(), claim.get("expires")
        if not isinstance(expires, int) or expires < now - SKEW_MS:
            raise RelayRefused("the token has expired (or this node's clock is ahead of the sender's by "
                               f"more than {SKEW_MS // 1000} s)")
        if expires > now + _TTL_MS + SKEW_MS:  # (its nonce would have to be kept that long)
            raise RelayRefused(f"the token expires too late: this node's clock is behind the sender's by more "
                               f"than {SKEW_MS // 1000} s")
        self._forget(now)
        if claim["nonce"] in self._seen:
            raise RelayRefused("the token was used already (a replayed request)")
        if len(self._seen) >= self.limit:
            raise RelayRefused(f"more than {self.limit} relayed requests in {(_TTL_MS + SKEW_MS) // 1000} s")
        self._seen[claim["nonce"]] = max(expires, now) + SKEW_MS
        return claim

    def _forget(self, now: int) -> None:
        stale = []
        for nonce, until in self._seen.items():
            if until >= now:
                break
            stale.append(nonce)
        for nonce in stale:
            del self._seen[nonce]


def check_body(claim: dict[str, Any], body: bytes, op: Any) -> None:
    """RelayRefused unless the token's claim was made for this body and operation."""
    if claim.get("sha256") != hashlib.sha256(body).hexdigest() or claim.get("op") != op:
        raise RelayRefused("the token was not made for this request's body")


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
        self.tokens = Tokens()

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
                headers={HEADER: seal(self.box, body, row.integration_id, str(op["op"]), node),
                         "content-type": "application/json"},
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
        if r.status_code == 401:
            raise RelayFailed(f"node {node} ({url}) refused this node's relay token (401); nodes sharing a "
                              "database must share the master key (PORTICO_MASTER_KEY) and keep their clocks "
                              "set; that node's log says why", delivered=False)
        if r.status_code != 200 or not isinstance(answer, dict):
            detail = answer.get("errorDetails") if isinstance(answer, dict) else r.text[:200]
            # 503: no federation there; like a refused token, the command did not run: another
            # link may take it.
            raise RelayFailed(f"node {node} ({url}) refused the relayed command ({r.status_code}): {detail}",
                              delivered=r.status_code != 503)
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
