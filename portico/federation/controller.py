"""The management side of the agent links (the "integration controller").

An agent opens a WebSocket on ``/integration-controller`` (:mod:`portico.federation.ws_server`
authenticates it and hands the link to :meth:`Controller.serve`). Its first command must be
HELLO ``{targetId, provider}``: the integration must exist, its provider match, and the token's
user hold "Manage APIs"; otherwise the HELLO is answered ERROR and the link closed.

Once registered, the controller sends HEALTH_CHECK every ``health_interval`` seconds (an
unhealthy answer or none drops the link) and refreshes the link's row in the status tables.
Of several agents linked for one integration (on this node) one is primary: PRIMARY
``{primary: true}`` goes to it, ``false`` to the others, and when it goes another takes over.
Commands for an integration (DISCOVER, START_INGEST, SUBSCRIBE, UNSUBSCRIBE) go to its primary
link; the agent answers START_INGEST and then sends INGEST batches, written by
:mod:`portico.federation.ingest`. ``close()`` says GOOD_BYE to every agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portico.federation import ingest
from portico.federation import protocol as p
from portico.federation.status import StatusBoard
from portico.security.principal import Principal
from portico.security.privileges import MANAGE_APIS
from portico.store import Store

log = logging.getLogger("portico.federation.controller")
INGEST_DEADLINE = 300.0  # a job with no INGEST batch for this long fails


class LinkUnavailable(Exception):
    """No agent link can carry a command for the integration."""


@dataclass(eq=False)
class Link:
    id: str
    integration_id: str
    provider: str
    agent_id: str
    agent_version: str
    remote: str
    channel: p.Channel
    since: float = field(default_factory=time.monotonic)
    primary: bool = False


@dataclass(eq=False)
class IngestJob:
    id: str
    integration_id: str
    api_ids: list[str]
    status: str = "RUNNING"  # RUNNING, SUCCEEDED, FAILED
    total: int = 0
    received: int = 0
    started: int = field(default_factory=lambda: int(time.time() * 1000))
    finished: int | None = None
    tally: ingest.Tally = field(default_factory=ingest.Tally)
    removed_from_provider: list[str] = field(default_factory=list)
    plans_removed: list[str] = field(default_factory=list)
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "integrationId": self.integration_id, "status": self.status,
                "apiIds": self.api_ids, "total": self.total, "received": self.received,
                "created": self.tally.created, "updated": self.tally.updated,
                "removedFromProvider": self.removed_from_provider, "plansRemoved": self.plans_removed,
                "errors": self.tally.errors + ([self.error] if self.error else []),
                "started": self.started, "finished": self.finished}


class _Session:
    """One accepted WebSocket before and after its HELLO."""

    def __init__(self, controller: Controller, principal: Principal, remote: str) -> None:
        self.controller = controller
        self.principal = principal
        self.remote = remote
        self.link: Link | None = None
        self.hello = asyncio.Event()
        self.channel: p.Channel | None = None

    def handlers(self) -> dict[str, p.Handler]:
        return {p.HELLO: self.on_hello, p.INGEST: self.on_ingest}

    def _refuse(self, message: str) -> p.CommandFailed:
        assert self.channel is not None
        channel = self.channel

        async def close_soon() -> None:
            await asyncio.sleep(0.2)  # the ERROR reply goes out first
            await channel.close(1008, "HELLO refused")

        self.controller._spawn(close_soon())
        log.warning("agent from %s refused: %s", self.remote, message)
        return p.CommandFailed(message)

    async def on_hello(self, payload: p.Payload) -> p.Payload:
        if self.link is not None:
            raise p.CommandFailed("HELLO was already accepted on this link")
        target, provider = payload.get("targetId"), payload.get("provider")
        if not isinstance(target, str) or not target or not isinstance(provider, str) or not provider:
            raise self._refuse("HELLO needs 'targetId' (the integration id) and 'provider'")
        async with self.controller.store.read() as tx:
            row = await tx.get(ingest.INTEGRATION, target)
        if row is None:
            raise self._refuse(f"no integration {target!r}")
        if row.body.get("provider") != provider:
            raise self._refuse(f"integration {target!r} is of provider {row.body.get('provider')!r}, "
                               f"not {provider!r}")
        if not self.principal.holds(MANAGE_APIS):
            raise self._refuse(f"user {self.principal.login_id!r} lacks the functional privilege "
                               f"'{MANAGE_APIS}' needed to link integration {target!r}")
        assert self.channel is not None
        link = Link(str(uuid.uuid4()), target, provider, str(payload.get("agentId") or "agent"),
                    str(payload.get("agentVersion") or "unknown"), self.remote, self.channel)
        self.link = link
        await self.controller._register(link)
        self.hello.set()
        return {"targetId": target}

    async def on_ingest(self, payload: p.Payload) -> p.Payload:
        if self.link is None:
            raise p.CommandFailed("say HELLO first")
        return await self.controller._on_ingest(self.link, payload)


class Controller:
    def __init__(self, store: Store, health_interval: float | None = None, reply_timeout: float = p.REPLY_TIMEOUT,
                 hello_timeout: float = 15.0, node_id: str | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        env = os.environ.get("PORTICO_FEDERATION_HEALTH_INTERVAL")
        self.health_interval = health_interval or (float(env) if env else p.HEALTH_INTERVAL)
        self.reply_timeout = reply_timeout
        self.hello_timeout = hello_timeout
        self.node_id = node_id or f"node-{uuid.uuid4().hex[:12]}"
        self.board = StatusBoard(store, self.node_id)
        self.on_change = on_change or (lambda: None)
        self.links: dict[str, list[Link]] = {}
        self.jobs: dict[str, IngestJob] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closing = False

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- links ------------------------------------------------------------------------------------

    async def serve(self, transport: p.Transport, principal: Principal, remote: str) -> None:
        """Run one authenticated agent link until it closes."""
        session = _Session(self, principal, remote)
        channel = p.Channel(transport, session.handlers(), reply_timeout=self.reply_timeout)
        session.channel = channel
        runner = asyncio.create_task(channel.run())
        try:
            hello = asyncio.create_task(session.hello.wait())
            try:
                await asyncio.wait({runner, hello}, timeout=self.hello_timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                hello.cancel()
            if session.link is None:
                if not runner.done():
                    log.warning("agent from %s said no HELLO within %.0f s", remote, self.hello_timeout)
                    await channel.close(1008, "HELLO expected")
            else:
                health = asyncio.create_task(self._health_loop(session))
                try:
                    await asyncio.wait({runner, health}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    health.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await health
            await channel.close()
            await runner
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            if session.link is not None:
                await self._unregister(session.link)

    async def _register(self, link: Link) -> None:
        peers = self.links.setdefault(link.integration_id, [])
        peers.append(link)
        link.primary = not any(other.primary for other in peers if other is not link)
        try:
            await self.board.link_opened(link.id, link.integration_id, link.agent_id, link.agent_version,
                                         link.remote, link.primary)
        except Exception:
            log.exception("could not record the link of integration %s", link.integration_id)
        log.info("integration %s: agent %s %s linked from %s (%s)", link.integration_id, link.agent_id,
                 link.agent_version, link.remote, "primary" if link.primary else "standby")
        self._spawn(self._tell_primary(link))

    async def _tell_primary(self, link: Link) -> None:
        with contextlib.suppress(p.CommandFailed):
            await link.channel.request(p.PRIMARY, {"primary": link.primary}, wait=self.reply_timeout)

    async def _unregister(self, link: Link) -> None:
        peers = self.links.get(link.integration_id, [])
        if link in peers:
            peers.remove(link)
        if not peers:
            self.links.pop(link.integration_id, None)
        elif link.primary and not any(other.primary for other in peers):
            successor = min(peers, key=lambda other: other.since)
            successor.primary = True
            self._spawn(self._tell_primary(successor))
            with contextlib.suppress(Exception):
                await self.board.heartbeat(successor.id, True)
        link.primary = False
        with contextlib.suppress(Exception):
            await self.board.link_closed(link.id)
        log.info("integration %s: agent %s unlinked", link.integration_id, link.agent_id)

    async def _health_loop(self, session: _Session) -> None:
        link = session.link
        assert link is not None
        while True:
            await asyncio.sleep(self.health_interval)
            try:
                answer = await link.channel.request(p.HEALTH_CHECK, {}, wait=self.reply_timeout)
            except p.CommandFailed as exc:
                log.warning("integration %s: HEALTH_CHECK failed (%s); dropping the link", link.integration_id, exc)
                return
            if not answer.get("healthy", False):
                log.warning("integration %s: agent unhealthy (%s); dropping the link", link.integration_id,
                            answer.get("detail"))
                return
            try:
                async with self.store.read() as tx:
                    exists = await tx.get(ingest.INTEGRATION, link.integration_id) is not None
            except Exception:  # the store is away for a moment: keep the link
                exists = True
            if not exists:  # deleted, possibly through another node
                with contextlib.suppress(p.CommandFailed):
                    await link.channel.request(p.GOOD_BYE, {"targetId": link.integration_id, "reconnect": False},
                                               wait=2.0)
                return
            version = answer.get("agentVersion")
            if isinstance(version, str) and version:
                link.agent_version = version
            detail = answer.get("detail")
            try:
                await self.board.heartbeat(link.id, link.primary, link.agent_version)
                if link.primary:
                    error = detail if isinstance(detail, str) and detail and detail != "ok" else None
                    await self.board.provider_error(link.integration_id, error)
            except Exception:  # the store is away for a moment: the link itself is fine
                log.warning("could not record the heartbeat of integration %s", link.integration_id, exc_info=True)

    def primary(self, integration_id: str) -> Link:
        peers = self.links.get(integration_id) or []
        for link in peers:
            if link.primary and not link.channel.closed.is_set():
                return link
        raise LinkUnavailable(f"no agent is connected for integration {integration_id}")

    async def unavailable_reason(self, integration_id: str) -> str:
        """Why commands cannot reach the integration: no agent at all, or one linked to another node."""
        others = [r for r in await self.board.live_links(integration_id) if r.node_id != self.node_id]
        if others:
            return (f"no agent is connected for integration {integration_id} on this node (agent "
                    f"{others[0].agent_id} is linked to node {others[0].node_id}); send the request there")
        return f"no agent is connected for integration {integration_id}"

    async def request(self, integration_id: str, command: str, payload: p.Payload,
                      wait: float | None = None) -> p.Payload:
        """Send ``command`` through the integration's primary link; LinkUnavailable or CommandFailed."""
        try:
            link = self.primary(integration_id)
        except LinkUnavailable:
            raise LinkUnavailable(await self.unavailable_reason(integration_id)) from None
        return await link.channel.request(command, payload, wait=wait or self.reply_timeout)

    def connected(self, integration_id: str) -> bool:
        return bool(self.links.get(integration_id))

    async def drop_links(self, integration_id: str, reason: str) -> None:
        for link in list(self.links.get(integration_id, [])):
            with contextlib.suppress(p.CommandFailed):
                await link.channel.request(p.GOOD_BYE, {"targetId": integration_id, "reconnect": False}, wait=2.0)
            await link.channel.close(1000, reason)

    async def close(self) -> None:
        """Say GOOD_BYE to every agent (they reconnect to another node, or to this one later)."""
        self.closing = True
        links = [link for peers in self.links.values() for link in peers]

        async def bye(link: Link) -> None:
            with contextlib.suppress(p.CommandFailed):
                await link.channel.request(p.GOOD_BYE, {"targetId": link.integration_id, "reconnect": True},
                                           wait=2.0)
            await link.channel.close(1001, "the management API is shutting down")

        await asyncio.gather(*(bye(link) for link in links), return_exceptions=True)
        for job in self.jobs.values():
            if job.status == "RUNNING":
                job.status, job.error = "FAILED", "the management API shut down"
                job.done.set()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.board.node_stopped()

    # -- discovery and ingestion ------------------------------------------------------------------

    async def discover(self, integration_id: str) -> dict[str, Any]:
        """DISCOVER through the primary link; each API marked NEW or UPDATE against the catalogue."""
        found = await self.request(integration_id, p.DISCOVER, {})
        apis = [a for a in found.get("apis") or [] if isinstance(a, dict) and isinstance(a.get("uniqueId"), str)]
        async with self.store.read() as tx:
            for api in apis:
                api_id = ingest.api_id_for(integration_id, api["uniqueId"])
                api["apiId"] = api_id
                api["state"] = "UPDATE" if await tx.get("api", api_id) is not None else "NEW"
        errors = [str(e) for e in found.get("errors") or []]
        summary = {"total": len(apis), "new": sum(a["state"] == "NEW" for a in apis),
                   "update": sum(a["state"] == "UPDATE" for a in apis),
                   "isPartialDiscovery": bool(found.get("isPartialDiscovery")), "errors": errors}
        with contextlib.suppress(Exception):
            await self.board.discovered(integration_id, summary)
            await self.board.provider_error(integration_id, "; ".join(errors) or None)
        return {**summary, "apis": apis}

    async def start_ingest(self, integration_id: str, api_ids: list[str]) -> IngestJob:
        job = IngestJob(str(uuid.uuid4()), integration_id, list(api_ids))
        job.deadline = time.monotonic() + INGEST_DEADLINE
        self.jobs[job.id] = job
        self._forget_old_jobs()
        try:
            answer = await self.request(integration_id, p.START_INGEST, {"ingestJobId": job.id, "apiIds": api_ids})
        except (LinkUnavailable, p.CommandFailed):
            self.jobs.pop(job.id, None)
            raise
        async with job.lock:
            job.total = int(answer.get("total") or 0)
        self._spawn(self._watch(job))
        return job

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self.jobs.values() if j.status != "RUNNING"]
        for job in sorted(finished, key=lambda j: j.started)[:-100]:
            self.jobs.pop(job.id, None)

    async def _watch(self, job: IngestJob) -> None:
        while not job.done.is_set():
            left = job.deadline - time.monotonic()
            if left <= 0:
                job.status, job.error = "FAILED", f"no INGEST batch within {INGEST_DEADLINE:.0f} s"
                job.finished = int(time.time() * 1000)
                job.done.set()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), left)

    async def _on_ingest(self, link: Link, payload: p.Payload) -> p.Payload:
        job = self.jobs.get(str(payload.get("ingestJobId")))
        if job is None or job.integration_id != link.integration_id:
            raise p.CommandFailed(f"unknown ingest job {payload.get('ingestJobId')!r}")
        if job.status != "RUNNING":
            raise p.CommandFailed(f"ingest job {job.id} is {job.status}")
        apis = payload.get("apis") or []
        if not isinstance(apis, list):
            raise p.CommandFailed("INGEST 'apis' must be a list")
        items, errors = await ingest.prepare(apis)
        async with job.lock:
            job.deadline = time.monotonic() + INGEST_DEADLINE
            job.tally.errors.extend(errors)
            async with self.store.transaction() as tx:
                integration = await tx.get(ingest.INTEGRATION, job.integration_id)
                if integration is None:
                    job.status, job.error = "FAILED", "the integration was deleted"
                    job.done.set()
                    raise p.CommandFailed(job.error)
                await ingest.write_batch(tx, integration.body, items, job.tally)
            job.received += len(apis)
            self.on_change()
            if payload.get("done"):
                self._spawn(self._finish(job))
        return {}

    async def _finish(self, job: IngestJob) -> None:
        """The last batch is in: mark vanished APIs, close the subscriptions of vanished plans."""
        try:
            full = not job.api_ids
            async with self.store.transaction() as tx:
                if full:
                    job.removed_from_provider = await ingest.mark_removed(tx, job.integration_id, job.tally.api_ids)
                gone = await ingest.gone_plans(tx, job.integration_id, job.tally.plan_ids if full else None)
                grants = await ingest.grants_on(tx, gone)
            for grant in grants:
                try:
                    await self.unsubscribe(grant)
                except (LinkUnavailable, p.CommandFailed) as exc:
                    job.tally.errors.append(f"subscription of application {grant.get('applicationId')}: "
                                            f"the provider key could not be revoked: {exc}")
            async with self.store.transaction() as tx:
                await ingest.remove_plans(tx, job.integration_id, gone)
            job.plans_removed = gone
            job.status = "SUCCEEDED"
        except Exception as exc:
            log.exception("ingest job %s failed", job.id)
            job.status, job.error = "FAILED", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished = int(time.time() * 1000)
            self.on_change()
            with contextlib.suppress(Exception):
                await self.board.ingested(job.integration_id, {k: v for k, v in job.view().items()
                                                               if k not in ("apiIds", "integrationId")})
            job.done.set()

    # -- subscriptions ----------------------------------------------------------------------------

    async def subscribe(self, integration_id: str, api_id: str, details: dict[str, Any], subscription_id: str,
                        application_id: str, application_name: str, usage_plan_id: str) -> dict[str, Any]:
        """SUBSCRIBE through the primary link; the provider's ``{id, apiKey, metadata}``."""
        answer = await self.request(integration_id, p.SUBSCRIBE, {"apiId": api_id, "subscription": {
            "id": subscription_id, "applicationId": application_id, "applicationName": application_name,
            "planId": usage_plan_id, "metadata": details}})
        sub = answer.get("subscription")
        if not isinstance(sub, dict) or not isinstance(sub.get("apiKey"), str):
            raise p.CommandFailed("the agent's SUBSCRIBE answer carries no apiKey")
        return sub

    async def unsubscribe(self, grant: dict[str, Any]) -> None:
        await self.request(str(grant["integrationId"]), p.UNSUBSCRIBE, {"apiId": grant.get("apiId"), "subscription": {
            "id": grant.get("subscriptionId") or grant.get("applicationId"), "metadata": grant.get("metadata") or {}}})
