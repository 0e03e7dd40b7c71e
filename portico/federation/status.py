"""The live status of integrations: agent links, last discovery, ingestion and provider error.

Kept in ``integration_links`` / ``integration_status``, written on the store's engine directly and
never through ``Store.transaction()``: heartbeats are not configuration and must not move
``config_state.revision`` (that would rebuild every node's gateway snapshot every 30 s).

Multi-node: each node writes the rows of the links it holds and refreshes their heartbeat every
few seconds while they are open (the controller's lease loop, which writes a row again if it is
missing) and at every HEALTH_CHECK; every node reads all rows, and a link whose heartbeat is older
than :attr:`StatusBoard.stale_ms` (:data:`STALE_MS` by default) reads as gone (its node died
without saying so). The rows, oldest link first, are also the cluster's election of each
integration's primary link (:meth:`portico.federation.controller.Controller.elect`); so that nodes
whose clocks differ agree on it, on PostgreSQL the links' times are written and judged by the
database's clock (:meth:`StatusBoard.clock`), never a node's own. SQLite serves one node.

The integration's row also keeps the last link's agent version, heartbeat and the times of the
last connection and disconnection, so they outlive the link's row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, and_, cast, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from portico.store import Store
from portico.store.db import now_ms
from portico.store.tables import integration_links, integration_status

STALE_MS = 15_000  # three missed lease refreshes (every 5 s): a node that died is noticed in seconds
FORGET_MS = 24 * 3600 * 1000  # rows of nodes that died are deleted after a day


@dataclass(frozen=True, slots=True)
class LinkRow:
    link_id: str
    integration_id: str
    node_id: str
    agent_id: str
    agent_version: str
    remote: str
    primary: bool
    connected_at: int
    last_heartbeat: int

    def view(self) -> dict[str, Any]:
        return {"agentId": self.agent_id, "agentVersion": self.agent_version, "primary": self.primary,
                "node": self.node_id, "remoteAddress": self.remote, "connectedSince": self.connected_at,
                "lastHeartbeat": self.last_heartbeat}


class OpenLink(Protocol):
    """What the lease needs of an open link (:class:`portico.federation.controller.Link`)."""

    id: str
    integration_id: str
    agent_id: str
    agent_version: str
    remote: str
    primary: bool


class StatusBoard:
    """Reads and writes the status tables for one node (``node_id``)."""

    def __init__(self, store: Store, node_id: str, stale_ms: int = STALE_MS) -> None:
        self.store = store
        self.node_id = node_id
        self.stale_ms = stale_ms
        self._rows = asyncio.Lock()  # a lease write never brings back the row of a link just closed

    def clock(self) -> Any:
        """Now in epoch milliseconds, for link times: on PostgreSQL the database's clock (an SQL
        expression: every node writes and judges liveness by the same clock), else this process's."""
        if self.store.engine.dialect.name == "postgresql":
            return cast(func.floor(func.extract("epoch", func.clock_timestamp()) * 1000), BigInteger)
        return now_ms()

    # -- links ----------------------------------------------------------------------------------

    async def link_opened(self, link_id: str, integration_id: str, agent_id: str, agent_version: str,
                          remote: str, primary: bool) -> None:
        now = self.clock()
        async with self.store.engine.begin() as conn:
            await conn.execute(delete(integration_links).where(integration_links.c.last_heartbeat < now - FORGET_MS))
            await conn.execute(insert(integration_links).values(
                link_id=link_id, integration_id=integration_id, node_id=self.node_id, agent_id=agent_id[:128],
                agent_version=agent_version[:64], remote=remote[:256], is_primary=primary, connected_at=now,
                last_heartbeat=now))
        await self._put(integration_id, agent_version=agent_version[:64], last_heartbeat=now, last_connected_at=now)

    async def heartbeat(self, link_id: str, primary: bool, agent_version: str | None = None) -> None:
        values: dict[str, Any] = {"last_heartbeat": self.clock(), "is_primary": primary}
        if agent_version:
            values["agent_version"] = agent_version[:64]
        async with self.store.engine.begin() as conn:
            await conn.execute(update(integration_links).where(integration_links.c.link_id == link_id).values(**values))
            integration_id = (await conn.execute(select(integration_links.c.integration_id)
                                                 .where(integration_links.c.link_id == link_id))).scalar_one_or_none()
        if integration_id is not None:
            await self._put(integration_id, create=False, **{k: v for k, v in values.items() if k != "is_primary"})

    async def refresh(self, links: Sequence[OpenLink]) -> None:
        """The lease: this node's open links are alive (their agents are still connected). A link
        whose row is missing (its first write failed, or a peer deleted it) gets its row again."""
        if not links:
            return
        ids = [link.id for link in links]
        mine = and_(integration_links.c.node_id == self.node_id, integration_links.c.link_id.in_(ids))
        async with self._rows, self.store.engine.begin() as conn:
            now = self.clock()
            res = await conn.execute(update(integration_links).where(mine).values(last_heartbeat=now))
            if res.rowcount == len(ids):
                return
            present = set((await conn.execute(select(integration_links.c.link_id).where(mine))).scalars())
            for link in links:
                if link.id not in present:
                    await conn.execute(insert(integration_links).values(
                        link_id=link.id, integration_id=link.integration_id, node_id=self.node_id,
                        agent_id=link.agent_id[:128], agent_version=link.agent_version[:64],
                        remote=link.remote[:256], is_primary=link.primary, connected_at=now, last_heartbeat=now))

    async def set_primary(self, link_id: str, primary: bool) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(update(integration_links).where(integration_links.c.link_id == link_id)
                               .values(is_primary=primary))

    async def link_closed(self, link_id: str) -> None:
        await self._closed(integration_links.c.link_id == link_id)

    async def node_stopped(self) -> None:
        await self._closed(integration_links.c.node_id == self.node_id)

    async def _closed(self, where: Any) -> None:
        """Delete link rows, keeping each integration's last link facts in its status row."""
        async with self._rows, self.store.engine.begin() as conn:
            rows = (await conn.execute(select(integration_links).where(where))).all()
            await conn.execute(delete(integration_links).where(where))
        now = now_ms()
        for row in rows:
            # update only: a deleted integration's status row is not brought back
            await self._put(row.integration_id, create=False, agent_version=row.agent_version,
                            last_heartbeat=row.last_heartbeat, last_disconnected_at=now)

    async def live_links(self, integration_id: str | None = None) -> list[LinkRow]:
        q = select(integration_links).where(integration_links.c.last_heartbeat >= self.clock() - self.stale_ms)
        if integration_id is not None:
            q = q.where(integration_links.c.integration_id == integration_id)
        async with self.store.read_engine.connect() as conn:
            rows = (await conn.execute(q.order_by(integration_links.c.connected_at,
                                                           integration_links.c.link_id))).all()
        return [LinkRow(r.link_id, r.integration_id, r.node_id, r.agent_id, r.agent_version, r.remote,
                        bool(r.is_primary), int(r.connected_at), int(r.last_heartbeat)) for r in rows]

    # -- per-integration facts ------------------------------------------------------------------

    async def _put(self, integration_id: str, create: bool = True, only_if: Any = None, **values: Any) -> None:
        where = integration_status.c.integration_id == integration_id
        if only_if is not None:
            where = and_(where, only_if)
        for _ in range(2):  # another node may insert the row between our update and insert
            async with self.store.engine.begin() as conn:
                res = await conn.execute(update(integration_status).where(where).values(**values))
                if res.rowcount or not create:
                    return
                try:
                    await conn.execute(insert(integration_status).values(integration_id=integration_id, **values))
                    return
                except IntegrityError:
                    pass

    async def discovered(self, integration_id: str, summary: dict[str, Any]) -> None:
        await self._put(integration_id, last_discovery_at=now_ms(), discovery=summary)

    async def ingested(self, integration_id: str, summary: dict[str, Any]) -> None:
        await self._put(integration_id, last_ingest_at=now_ms(), ingest=summary)

    async def provider_error(self, integration_id: str, message: str | None, asked_at: int | None = None) -> None:
        """Record the provider's latest error (None: the agent reports it healthy again). ``asked_at``:
        when the report was asked for (health checks); a report of no error asked for before the
        recorded error was written (an ingestion's, say, finishing meanwhile) does not clear it."""
        if message is None and asked_at is not None:
            error_at = integration_status.c.last_provider_error_at
            await self._put(integration_id, create=False, only_if=error_at.is_(None) | (error_at < asked_at),
                            last_provider_error=None, last_provider_error_at=None)
            return
        await self._put(integration_id, last_provider_error=message, last_provider_error_at=now_ms() if message
                        else None)

    async def forget(self, integration_id: str) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(delete(integration_status).where(integration_status.c.integration_id == integration_id))
            await conn.execute(delete(integration_links).where(and_(
                integration_links.c.integration_id == integration_id, integration_links.c.node_id == self.node_id)))

    async def status_of(self, integration_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The wire status of each integration."""
        links: dict[str, list[LinkRow]] = {}
        for row in await self.live_links():
            links.setdefault(row.integration_id, []).append(row)
        async with self.store.read_engine.connect() as conn:
            facts = {r.integration_id: r for r in (await conn.execute(
                select(integration_status).where(integration_status.c.integration_id.in_(integration_ids)))).all()}
        out = {}
        for iid in integration_ids:
            live = links.get(iid, [])
            fact = facts.get(iid)
            freshest = max(live, key=lambda r: r.last_heartbeat) if live else None
            error = None
            if fact is not None and fact.last_provider_error:
                error = {"message": fact.last_provider_error, "time": fact.last_provider_error_at}
            out[iid] = {
                "agentStatus": "CONNECTED" if live else "DISCONNECTED",
                # with no live link, the last one's facts (kept after its row went)
                "agentVersion": freshest.agent_version if freshest else fact.agent_version if fact else None,
                "lastHeartbeat": freshest.last_heartbeat if freshest else fact.last_heartbeat if fact else None,
                "lastConnected": fact.last_connected_at if fact is not None else None,
                "lastDisconnected": fact.last_disconnected_at if fact is not None else None,
                "agents": [r.view() for r in live],
                "lastDiscovery": ({"time": fact.last_discovery_at, **(fact.discovery or {})}
                                  if fact is not None and fact.last_discovery_at else None),
                "lastIngest": ({"time": fact.last_ingest_at, **(fact.ingest or {})}
                               if fact is not None and fact.last_ingest_at else None),
                "lastProviderError": error,
            }
        return out
