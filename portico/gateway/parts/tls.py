"""Snapshot part: TLS (issue 5 section 2).

- ``snap.extras[OUTBOUND]``: client contexts for native services over https (the outbound defaults
  of /configurations/keystore, and endpoint aliases with stores of their own);
- the HTTPS listener of this node picks up a changed keystore or truststore (no restart);
- ``snap.extras[APPS_BY_CERT]``: applications by their ``httpsCertificate`` identifiers, and
  ``snap.extras[CERT_HEADER]``: the ``customCertificateHeader`` when an administrator set it."""

from __future__ import annotations

from typing import Any

from portico.gateway.client_certs import APPS_BY_CERT, CERT_HEADER, certificate_der, fingerprint
from portico.gateway.snapshot import AppView, Snapshot, snapshot_part
from portico.gateway.tls import CACHE, LISTENER, OUTBOUND, ContextCache, ListenerTls, OutboundTls
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
    default = await cache.client(tx, box, d["outboundTruststoreName"], d["outboundKeystoreName"],
                                 d["outboundKeyAlias"], used)
    by_alias = {}
    for row in await tx.list("alias"):
        body = row.body
        if body.get("type") != "endpoint" or not (body.get("truststoreAlias") or body.get("keystoreAlias")):
            continue
        own_key = bool(body.get("keystoreAlias") and body.get("keyAlias"))
        by_alias[str(body.get("name"))] = await cache.client(
            tx, box, body.get("truststoreAlias") or d["outboundTruststoreName"],
            body.get("keystoreAlias") if own_key else d["outboundKeystoreName"],
            body.get("keyAlias") if own_key else d["outboundKeyAlias"], used)
    cache.keep(used)
    return OutboundTls(default, by_alias)


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
    if header.strip():
        snap.extras[CERT_HEADER] = header.strip().lower().encode("latin-1")
