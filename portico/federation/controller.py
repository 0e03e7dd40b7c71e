"""The management side of the agent links (the "integration controller").

An agent opens a WebSocket on ``/integration-controller`` (:mod:`portico.federation.ws_server`
authenticates it and hands the link to :meth:`Controller.serve`). Its first command must be
HELLO ``{targetId, provider}``: the integration must exist, its provider match, and the token's
user hold "Manage APIs"; otherwise the HELLO is answered ERROR and the link closed.

Once registered, the controller sends HEALTH_CHECK every ``health_interval`` seconds (an
unhealthy answer or none drops the link) and refreshes the link's row in the status tables; a lease
loop refreshes the rows of all open links every :attr:`Controller.lease_interval` seconds (5 s at
most), so the links of a node that died read as gone within three of those.

Of all agents linked for one integration, across the nodes sharing the database, one is primary:
the oldest live link row (:meth:`Controller.elect`, run at every link change and lease round).
PRIMARY ``{primary: true}`` goes to it, ``false`` to the others, and when it goes the next oldest
takes over. Commands for an integration (DISCOVER, START_INGEST, SUBSCRIBE, UNSUBSCRIBE) go to its
primary link: here, or relayed to the node holding it (:mod:`portico.federation.relay`); discovery
and ingestion jobs are :mod:`portico.federation.jobs`. Provider keys still to be deleted
(:mod:`portico.federation.keys`) are retried at the primary link's health checks. ``close()`` says
GOOD_BYE to every agent.

The link's credentials are checked again at every health-check round and before every command:
a token revoked or expired, a user deactivated or no longer holding "Manage APIs" closes the link
with code 4401 or 4403 and the reason (the agent logs it and backs off)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from portico.federation import ingest, keys
from portico.federation import protocol as p
from portico.federation.jobs import Ingestions
from portico.federation.protocol import LinkUnavailable
from portico.federation.relay import URL_ENV, Relay, RelayFailed, advertise, loopback, node_url, withdraw
from portico.federation.status import LinkRow, StatusBoard
from portico.security.principal import Principal
from portico.security.privileges import MANAGE_APIS
from portico.security.secrets import SecretBox
from portico.store import Store
from portico.store.db import now_ms
from portico.tasks import stop_task

log = logging.getLogger("portico.federation.controller")
__all__ = ["Controller", "CredentialsRevoked", "Link", "LinkUnavailable", "RelayFailed"]
T = TypeVar("T")
LEASE_INTERVAL = 5.0  # link rows refreshed and the primary elected again this often (the health
                      # interval when shorter, but at most once a second); stale after three
ANNOUNCE_INTERVAL = 600.0  # this node's address row is marked seen this often while it holds links


class CredentialsRevoked(Exception):
    """The agent's token no longer authenticates (revoked, expired, its user deactivated)."""


Recheck = Callable[[], Awaitable[Principal]]  # the link's principal now; CredentialsRevoked if none


def _close_reason(text: str) -> str:
    """A WebSocket close reason fits in 123 bytes of UTF-8."""
    data = text.encode()
    return text if len(data) <= 123 else data[:120].decode("utf-8", "ignore") + "..."


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


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
    told: bool | None = None  # what the agent was last told in PRIMARY
    recheck: Recheck | None = None


class _Session:
    """One accepted WebSocket before and after its HELLO."""

    def __init__(self, controller: Controller, principal: Principal, remote: str,
                 recheck: Recheck | None = None) -> None:
        self.controller = controller
        self.principal = principal
        self.remote = remote
        self.recheck = recheck
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

        self.controller.spawn(close_soon())
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
                    str(payload.get("agentVersion") or "unknown"), self.remote, self.channel, recheck=self.recheck)
        self.link = link
        await self.controller._register(link)
        self.hello.set()
        return {"targetId": target}

    async def on_ingest(self, payload: p.Payload) -> p.Payload:
        if self.link is None:
            raise p.CommandFailed("say HELLO first")
        return await self.controller.ingestions.on_batch(self.link, payload)


class Controller:
    def __init__(self, store: Store, health_interval: float | None = None, reply_timeout: float = p.REPLY_TIMEOUT,
                 hello_timeout: float = 15.0, node_id: str | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self.node_id = node_id or f"node-{uuid.uuid4().hex[:12]}"
        self.board = StatusBoard(store, self.node_id)
        env = os.environ.get("PORTICO_FEDERATION_HEALTH_INTERVAL")
        self.health_interval = health_interval or (float(env) if env else p.HEALTH_INTERVAL)
        self.reply_timeout = reply_timeout
        self.hello_timeout = hello_timeout
        self.relay = Relay(self)
        self._lease: asyncio.Task[None] | None = None
        self._announced = 0.0
        self.on_change = on_change or (lambda: None)
        self.links: dict[str, list[Link]] = {}
        self.ingestions = Ingestions(self)
        self.app_locks = KeyedLocks()  # federated subscription writes, one application at a time
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closing = False

    @property
    def health_interval(self) -> float:
        return self._health_interval

    @health_interval.setter
    def health_interval(self, seconds: float) -> None:
        # Nodes sharing a database should share the interval: each reads the others' rows with it.
        self._health_interval = seconds
        self.board.stale_ms = int(3 * self.lease_interval * 1000)

    @property
    def lease_interval(self) -> float:
        return max(min(self._health_interval, LEASE_INTERVAL), 1.0)

    async def advertise(self, host: str, port: int, secrets: SecretBox | None) -> None:
        """Make this node reachable for relayed commands: its URL in the store, the master key that
        seals relayed requests (:mod:`portico.federation.relay`). Called once the listener is up."""
        self.relay.box = secrets
        self.relay.url = node_url(host, port)
        if self.store.engine.dialect.name == "postgresql" and loopback(self.relay.url):
            log.warning("this node advertises %s for relayed federation commands, which other machines sharing "
                        "the database cannot reach; set %s (or listen on a reachable address) when nodes run "
                        "on several machines", self.relay.url, URL_ENV)
        await self._announce()

    async def _announce(self) -> None:
        if self.relay.url is None:
            return
        self._announced = time.monotonic()
        try:
            live = {row.node_id for row in await self.board.live_links()}
            await advertise(self.store, self.node_id, self.relay.url, live | {self.node_id})
        except Exception:
            log.warning("could not record this node's address for relayed federation commands", exc_info=True)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- links ------------------------------------------------------------------------------------

    async def serve(self, transport: p.Transport, principal: Principal, remote: str,
                    recheck: Recheck | None = None) -> None:
        """Run one authenticated agent link until it closes. ``recheck`` authenticates the link's
        credentials again (at every health round and before every command)."""
        session = _Session(self, principal, remote, recheck)
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
                    await stop_task(health)
            await channel.close()
            await runner
        finally:
            await stop_task(runner)
            if session.link is not None:
                await self._unregister(session.link)

    async def _register(self, link: Link) -> None:
        self.links.setdefault(link.integration_id, []).append(link)
        try:
            await self.board.link_opened(link.id, link.integration_id, link.agent_id, link.agent_version,
                                         link.remote, False)
        except Exception:
            log.exception("could not record the link of integration %s", link.integration_id)
        await self._announce()  # (again: a node without links for a day may have been forgotten)
        await self.elect(link.integration_id)
        if self._lease is None or self._lease.done():
            self._lease = self.spawn(self._lease_loop())
        log.info("integration %s: agent %s %s linked from %s (%s)", link.integration_id, link.agent_id,
                 link.agent_version, link.remote, "primary" if link.primary else "standby")

    async def _tell_primary(self, link: Link) -> None:
        with contextlib.suppress(p.CommandFailed):
            await link.channel.request(p.PRIMARY, {"primary": link.primary}, wait=self.reply_timeout)

    async def elect(self, integration_id: str, rows: list[LinkRow] | None = None) -> None:
        """Make the integration's oldest live link (across the nodes) primary, and tell this node's
        agents when that changes for them. Every node orders the same rows the same way, so they
        agree once they see the same rows; with the store away, nothing changes."""
        local = self.links.get(integration_id) or []
        if not local:
            return
        if rows is None:
            try:
                rows = await self.board.live_links(integration_id)
            except Exception:
                return
        open_ids = {link.id for link in local if not link.channel.closed.is_set()}
        elected = next((r.link_id for r in rows if r.node_id != self.node_id or r.link_id in open_ids), None)
        if elected is None and open_ids:  # our rows could not be written: our oldest link
            elected = min((link for link in local if link.id in open_ids), key=lambda link: link.since).id
        for link in list(local):  # (links may come and go while the rows are written)
            link.primary = link.id == elected
            if link.primary != link.told:
                link.told = link.primary
                self.spawn(self._tell_primary(link))
                with contextlib.suppress(Exception):
                    await self.board.set_primary(link.id, link.primary)
                log.info("integration %s: agent %s is %s", integration_id, link.agent_id,
                         "primary" if link.primary else "standby")

    async def _lease_loop(self) -> None:
        while self.links:
            await asyncio.sleep(self.lease_interval)
            open_links = [link for peers in self.links.values() for link in peers if not link.channel.closed.is_set()]
            if time.monotonic() - self._announced > ANNOUNCE_INTERVAL:
                await self._announce()  # (its "seen" time: a peer forgets a node not seen for a day)
            try:
                await self.board.refresh(open_links)
                rows = await self.board.live_links()
            except Exception:  # the store is away for a moment: the next round
                log.warning("could not refresh this node's agent links", exc_info=True)
                continue
            for integration_id in list(self.links):
                await self.elect(integration_id, [r for r in rows if r.integration_id == integration_id])

    async def _unregister(self, link: Link) -> None:
        peers = self.links.get(link.integration_id, [])
        if link in peers:
            peers.remove(link)
        if not peers:
            self.links.pop(link.integration_id, None)
        link.primary = False
        self.ingestions.link_closed(link.id)
        with contextlib.suppress(Exception):
            await self.board.link_closed(link.id)
        await self.elect(link.integration_id)
        log.info("integration %s: agent %s unlinked", link.integration_id, link.agent_id)

    async def _health_loop(self, session: _Session) -> None:
        link = session.link
        assert link is not None
        while True:
            await asyncio.sleep(self.health_interval)
            if await self._credentials_refused(link):
                return
            asked_at = now_ms()
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
                    await self.board.provider_error(link.integration_id, error, asked_at)
            except Exception:  # the store is away for a moment: the link itself is fine
                log.warning("could not record the heartbeat of integration %s", link.integration_id, exc_info=True)
            if link.primary:
                await self.retry_revocations(link.integration_id)

    async def _credentials_refused(self, link: Link) -> str | None:
        """Check the link's token and user again; when they no longer allow the link, close it with
        4401 (credentials gone) or 4403 (privilege gone) and return why."""
        if link.recheck is None:
            return None
        try:
            principal = await link.recheck()
        except CredentialsRevoked as exc:
            code, reason = p.CLOSE_UNAUTHORIZED, f"the agent's credentials are no longer valid: {exc}"
        except Exception:  # the store is away for a moment: keep the link, check again later
            log.warning("could not check the credentials of integration %s's agent", link.integration_id,
                        exc_info=True)
            return None
        else:
            if principal.holds(MANAGE_APIS):
                return None
            code, reason = (p.CLOSE_FORBIDDEN, f"user {principal.login_id!r} no longer holds the functional "
                                               f"privilege '{MANAGE_APIS}'")
        log.warning("integration %s: closing the link of agent %s: %s", link.integration_id, link.agent_id, reason)
        await link.channel.close(code, _close_reason(reason))
        return reason

    def primary(self, integration_id: str) -> Link:
        """This node's link for the integration's commands: its primary, else its oldest open one."""
        peers = [link for link in self.links.get(integration_id) or [] if not link.channel.closed.is_set()]
        if not peers:
            raise LinkUnavailable(f"no agent is connected for integration {integration_id} on this node")
        return next((link for link in peers if link.primary), min(peers, key=lambda link: link.since))

    async def targets(self, integration_id: str) -> list[Link | LinkRow]:
        """Where the integration's commands may go, the primary first: this node's links and the
        rows of other nodes' links (one per node, when relaying is possible)."""
        local = {link.id: link for link in self.links.get(integration_id) or [] if not link.channel.closed.is_set()}
        try:
            rows = await self.board.live_links(integration_id)
        except Exception:  # the store is away for a moment: this node's links only
            rows = []
        out: list[Link | LinkRow] = []
        nodes: set[str] = set()
        for row in rows:
            if row.node_id == self.node_id:
                if row.link_id in local:
                    out.append(local.pop(row.link_id))
            elif self.relay.enabled and row.node_id not in nodes:
                nodes.add(row.node_id)
                out.append(row)
        return out + sorted(local.values(), key=lambda link: link.since)

    async def unavailable_reason(self, integration_id: str) -> str:
        """Why commands cannot reach the integration: no agent at all, or one linked to another node."""
        others = [r for r in await self.board.live_links(integration_id) if r.node_id != self.node_id]
        if others:
            return (f"no agent is connected for integration {integration_id} on this node (agent "
                    f"{others[0].agent_id} is linked to node {others[0].node_id}) and this node cannot relay "
                    "commands to it; send the request there")
        return f"no agent is connected for integration {integration_id}"

    async def request(self, integration_id: str, command: str, payload: p.Payload,
                      wait: float | None = None, local_only: bool = False) -> p.Payload:
        """Send ``command`` through the integration's primary link, here or relayed to the node that
        holds it (``local_only``: this node's links only); LinkUnavailable or CommandFailed."""
        timeout = wait or self.reply_timeout
        if local_only:
            return await self._send(self.primary(integration_id), command, payload, timeout)
        return await self.dispatch(integration_id, lambda link: self._send(link, command, payload, timeout),
                                   lambda row: self.relay.command(row, command, payload, timeout))

    async def dispatch(self, integration_id: str, here: Callable[[Link], Awaitable[T]],
                       there: Callable[[LinkRow], Awaitable[T]]) -> T:
        """Run an operation of the integration where its primary link is: ``here`` with this node's
        link, or ``there`` relayed to another node's. One that surely did not reach its node (the
        node is unreachable, or had no link any more) goes to the next link."""
        targets = await self.targets(integration_id)
        if not targets:
            raise LinkUnavailable(await self.unavailable_reason(integration_id))
        failure: LinkUnavailable | None = None
        for target in targets:
            if isinstance(target, Link):
                return await here(target)
            try:
                return await there(target)
            except LinkUnavailable as exc:
                if getattr(exc, "delivered", True):
                    raise
                failure = exc
        assert failure is not None
        raise failure

    async def _send(self, link: Link, command: str, payload: p.Payload, wait: float) -> p.Payload:
        refused = await self._credentials_refused(link)
        if refused:
            raise LinkUnavailable(f"the agent link of integration {link.integration_id} was closed: {refused}")
        return await link.channel.request(command, payload, wait=wait)

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
        self.ingestions.shutdown()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.board.node_stopped()
        with contextlib.suppress(Exception):
            await withdraw(self.store, self.node_id)
        await self.relay.close()

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

    async def revoke_key(self, grant: dict[str, Any], claimed: bool = False) -> str | None:
        """Delete a key scheduled in :mod:`portico.federation.keys`: None when done (or when a stored
        grant uses the key again, which then stays), else why not (the record stays for a retry).
        Holds the application's write claim meanwhile unless the caller holds it (``claimed``)."""
        if claimed:
            return await self._revoke_scheduled(grant)
        app_id = str(grant.get("applicationId"))
        async with self.app_locks.hold(app_id):  # requests on this node wait for it, not the reverse
            try:
                token = await keys.claim(self.store, app_id, None, grant.get("integrationId"))
            except keys.Busy:
                return "a subscription of the application is being written"
            try:
                return await self._revoke_scheduled(grant)
            finally:
                with contextlib.suppress(Exception):
                    await keys.release(self.store, app_id, token)

    async def _revoke_scheduled(self, grant: dict[str, Any]) -> str | None:
        async with self.store.read() as tx:
            in_use = await keys.referenced(tx, grant)
        error = None
        if not in_use:
            try:
                await self.unsubscribe(grant)
            except (LinkUnavailable, p.CommandFailed) as exc:
                error = str(exc)
                log.warning("integration %s: the provider key of application %s could not be revoked (%s); "
                            "retried later", grant.get("integrationId"), grant.get("applicationId"), exc)
        await keys.settle(self.store, grant, error)
        return error

    async def retry_revocations(self, integration_id: str) -> None:
        """Try again the key deletions still scheduled for the integration (one health round each)."""
        try:
            for grant in await keys.scheduled(self.store, integration_id):
                await self.revoke_key(grant)
        except Exception:  # the store is away for a moment: next round
            log.warning("could not retry the key revocations of integration %s", integration_id, exc_info=True)
