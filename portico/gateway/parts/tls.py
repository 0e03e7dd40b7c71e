"""Snapshot part: TLS (issue 5 section 2).

- ``snap.extras[OUTBOUND]``: client contexts for native services over https (the outbound defaults
  of /configurations/keystore, and endpoint aliases with stores of their own);
- routing endpoints with an ``sslConfig`` of their own get their context bound to their
  :class:`~portico.policies._endpoint.TlsChoice` (its stores first, field by field, then the
  endpoint alias's, then the defaults);
- the HTTPS listener of this node picks up a changed keystore or truststore (no restart);
- ``snap.extras[APPS_BY_CERT]``: applications by their ``httpsCertificate`` identifiers, and
  ``snap.extras[CERT_HEADER]``: the ``customCertificateHeader`` when an administrator set it."""

from __future__ import annotations

from typing import Any, NamedTuple

from portico.gateway.client_certs import APPS_BY_CERT, CERT_HEADER, certificate_der, fingerprint
from portico.gateway.endpoint import TlsChoice
from portico.gateway.snapshot import AppView, Snapshot, snapshot_part
from portico.gateway.tls import CACHE, LISTENER, OUTBOUND, ContextCache, ListenerTls, OutboundTls
from portico.policies._endpoint import RoutingHandler
from portico.security.keystore.records import read_defaults
from portico.store import StoreTransaction


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    options = snap.services.options
    box = options.get("secrets")
    listener: ListenerTls | None = options.get(LISTENER)
    if box is not None:
        if listener is not None:
            await listener.refresh(tx, box)
        snap.extras[OUTBOUND] = await _outbound(tx, snap, box)
    await _certificates(tx, snap)


async def _outbound(tx: StoreTransaction, snap: Snapshot, box: Any) -> OutboundTls:
    cache: ContextCache = snap.services.get_or_create(CACHE, lambda _: ContextCache())
    used: dict[tuple[Any, ...], Any] = {}
    d = await read_defaults(tx)
    defaults = _Stores(d["outboundTruststoreName"], d["outboundKeystoreName"], d["outboundKeyAlias"])
    default = await cache.client(tx, box, *defaults, used)
    alias_stores: dict[str, _Stores] = {}
    by_alias = {}
    for row in await tx.list("alias"):
        body = row.body
        if body.get("type") != "endpoint" or not (body.get("truststoreAlias") or body.get("keystoreAlias")):
            continue
        own_key = bool(body.get("keystoreAlias") and body.get("keyAlias"))
        stores = alias_stores[str(body.get("name"))] = _Stores(
            body.get("truststoreAlias") or defaults.truststore,
            body.get("keystoreAlias") if own_key else defaults.keystore,
            body.get("keyAlias") if own_key else defaults.key_alias)
        by_alias[str(body.get("name"))] = await cache.client(tx, box, *stores, used)
    for choice in _routing_choices(snap):
        base = next((alias_stores[n] for n in choice.aliases if n in alias_stores), defaults)
        ssl = choice.config
        own_key = bool(ssl.keyStoreAlias and ssl.keyAlias)
        choice.context = await cache.client(
            tx, box, ssl.trustStoreAlias or base.truststore,
            ssl.keyStoreAlias if own_key else base.keystore, ssl.keyAlias if own_key else base.key_alias, used)
    cache.keep(used)
    return OutboundTls(default, by_alias)


class _Stores(NamedTuple):
    truststore: str | None
    keystore: str | None
    key_alias: str | None


def _routing_choices(snap: Snapshot) -> list[TlsChoice]:
    """The TLS choices of the routing handlers of this snapshot (each handler once)."""
    seen: set[int] = set()
    choices: list[TlsChoice] = []
    for api in snap.apis_by_id.values():
        plans = [api.plan, *api.scoped_plans.values()]
        for handler in (h for plan in plans for h in plan.request):
            if isinstance(handler, RoutingHandler) and id(handler) not in seen:
                seen.add(id(handler))
                choices.extend(handler.tls_choices())
    return choices


async def _certificates(tx: StoreTransaction, snap: Snapshot) -> None:
    views: dict[str, AppView] = {view.id: view for view in snap.apps_by_key.values()}
    index: dict[str, AppView] = {}
    for row in await tx.list("application"):
        view = views.get(row.id)
        if view is None:
            continue
        for ident in row.body.get("identifiers") or []:
            if ident.get("key") != "httpsCertificate":
                continue
            for value in ident.get("value") or []:
                der = certificate_der(str(value))
                if der is not None:
                    index[fingerprint(der)] = view
    snap.extras[APPS_BY_CERT] = index
    settings = await tx.get("settings", "settings")
    header = ((settings.body.get("extendedKeys") or {}).get("customCertificateHeader") or "") if settings else ""
    name = header.strip().lower()
    if name and name.isascii():  # checked on write; a stored value from before that check is ignored
        snap.extras[CERT_HEADER] = name.encode("ascii")
