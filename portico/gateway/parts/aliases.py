"""Snapshot part: aliases for ``${name}`` resolution.

``snap.simple_aliases`` maps every alias name to its value (a simple alias's ``value``, an
endpoint alias's ``endPointURI``), so templates render both; ``snap.extras["endpoint_aliases"]``
holds endpoint aliases with their timeouts, which take precedence in routing."""

from __future__ import annotations

from dataclasses import dataclass

from portico.domain.alias import Alias
from portico.gateway.endpoint import ENDPOINT_ALIASES
from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.store import StoreTransaction


@dataclass(frozen=True, slots=True)
class EndpointAliasView:
    name: str
    uri: str
    connection_timeout: float  # 0: use the routing action's, then the global setting
    read_timeout: float


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    endpoints: dict[str, EndpointAliasView] = {}
    for row in await tx.list("alias"):
        if row.body.get("type") not in ("simple", "endpoint"):
            continue  # authorization servers and providers (parts/oauth.py) are not ${name} values
        alias = Alias.model_validate(row.body)
        if alias.type == "simple" and alias.value is not None:
            snap.simple_aliases[alias.name] = alias.value
        elif alias.type == "endpoint" and alias.endPointURI:
            snap.simple_aliases[alias.name] = alias.endPointURI
            endpoints[alias.name] = EndpointAliasView(
                alias.name, alias.endPointURI, float(alias.connectionTimeout), float(alias.readTimeout))
    snap.extras[ENDPOINT_ALIASES] = endpoints
