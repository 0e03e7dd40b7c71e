"""Snapshot part: what token validation needs (issue 5), as ``snap.extras["oauth"]``, an
:class:`portico.oauth.runtime.OAuthView`: authorization servers with their verifiers and
introspectors (long-lived, kept across snapshots by :class:`OAuthRuntime` while unchanged), issuers,
and the client id -> application index built from the applications' strategies."""

from __future__ import annotations

from portico.gateway.snapshot import Services, Snapshot, snapshot_part
from portico.oauth.clients import KIND as STRATEGY
from portico.oauth.clients import Strategy
from portico.oauth.config import AUTH_SERVER, AuthServer, default_local
from portico.oauth.runtime import EXTRAS, SERVICE, OAuthRuntime
from portico.store import StoreTransaction


def runtime_of(services: Services) -> OAuthRuntime:
    def make(s: Services) -> OAuthRuntime:
        runtime = OAuthRuntime(s.options.get("store"), s.options.get("secrets"))
        s.closers.append(runtime.close)
        return runtime

    runtime: OAuthRuntime = services.get_or_create(SERVICE, make)
    return runtime


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    servers = [AuthServer.model_validate(r.body) for r in await tx.list("alias") if r.body.get("type") == AUTH_SERVER]
    if not any(s.is_local for s in servers):
        servers.insert(0, default_local())
    strategies = [Strategy.model_validate(r.body) for r in await tx.list(STRATEGY)]
    apps = [(r.id, list(r.body.get("authStrategyIds") or [])) for r in await tx.list("application")]
    snap.extras[EXTRAS] = await runtime_of(snap.services).compile(tx, servers, strategies, apps)
