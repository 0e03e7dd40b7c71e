"""TLS on the data plane (issue 5 section 2): the HTTPS listener's certificate, swapped without a
restart when its keystore changes, and the contexts used to call native services over https.

The listener is created once with a *base* context whose ``sni_callback`` hands every handshake
the current context (:class:`ListenerTls`); a configuration change builds a new current context
off the request path, so new handshakes use the new key while established connections go on.

Native services: :class:`OutboundTls` (``snap.extras[OUTBOUND]``) answers the context for a route,
the default outbound truststore and key (``/configurations/keystore``) or an endpoint alias's own;
contexts are cached by the stores' revisions (:class:`ContextCache`), so the pool keeps its
connections across unrelated configuration changes. A store that cannot be used is kept as the
reason, and routes to it fail with a 502 naming it."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portico.gateway.exchange import EVENT_HOOKS, Exchange
from portico.security.keystore.records import (
    KEYSTORE,
    TRUSTSTORE,
    KeystoreUnavailable,
    load_key_pair,
    load_trusted,
    read_defaults,
)
from portico.security.keystore.tls import ClientAuth, client_context, server_context
from portico.security.secrets import SecretBox
from portico.store import Store, StoreTransaction

if TYPE_CHECKING:
    from portico.events.model import TransactionEvent

log = logging.getLogger("portico.tls")

OUTBOUND = "outbound_tls"  # snap.extras key: an OutboundTls
LISTENER = "https_listener"  # Services.options key: the ListenerTls of this node, if any
CACHE = "tls_contexts"  # Services item: the ContextCache
LISTENER_KIND = "listener"  # stored rows naming the stores a running HTTPS listener uses (store_users)


@dataclass(frozen=True)
class HttpsOptions:
    """The HTTPS listener's stores; None falls back to the inbound defaults of /configurations/keystore."""

    keystore: str | None = None
    key_alias: str | None = None
    truststore: str | None = None
    client_auth: ClientAuth = "none"


async def _revision(tx: StoreTransaction, kind: str, name: str | None) -> int:
    if not name:
        return 0
    row = await tx.get(kind, name)
    return row.revision if row is not None else -1


class ListenerTls:
    """The HTTPS listener's TLS: ``context`` is given to the server once; ``refresh`` (run with each
    configuration snapshot) rebuilds the certificate and trust behind it when they changed."""

    def __init__(self, options: HttpsOptions) -> None:
        self.options = options
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.minimum_version = ssl.TLSVersion.TLSv1_2
        base.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                            "required": ssl.CERT_REQUIRED}[options.client_auth]
        base.sni_callback = self._select
        self.context = base
        self.current: ssl.SSLContext | None = None
        self.problem: str | None = "not configured yet"  # why handshakes are refused, when they are
        self._signature: tuple[Any, ...] | None = None

    def _select(self, sslobj: ssl.SSLObject, server_name: str | None, _base: ssl.SSLContext) -> int | None:
        current = self.current
        if current is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        sslobj.context = current
        return None

    async def names(self, tx: StoreTransaction) -> tuple[str | None, str | None, str | None]:
        """(keystore, key alias, truststore) in force: the options, else the inbound defaults."""
        o = self.options
        if o.keystore:
            return o.keystore, o.key_alias, o.truststore
        defaults = await read_defaults(tx)
        return defaults["keystoreName"], defaults["signingAlias"], o.truststore or defaults["truststoreName"]

    async def refresh(self, tx: StoreTransaction, box: SecretBox) -> None:
        keystore, alias, truststore = await self.names(tx)
        signature = (keystore, alias, truststore, await _revision(tx, KEYSTORE, keystore),
                     await _revision(tx, TRUSTSTORE, truststore))
        if signature == self._signature:
            return
        self._signature = signature
        try:
            if not keystore or not alias:
                raise KeystoreUnavailable("no keystore and key alias: give --https-keystore and --https-key-alias, "
                                          "or set keystoreName and signingAlias in /configurations/keystore")
            key = await load_key_pair(tx, box, keystore, alias)
            need_trust = self.options.client_auth != "none"
            if need_trust and not truststore:
                raise KeystoreUnavailable("client certificates need a truststore: give --https-truststore or "
                                          "set truststoreName in /configurations/keystore")
            trusted = await load_trusted(tx, box, truststore) if need_trust and truststore else None
            self.current = await asyncio.to_thread(server_context, key, trusted, self.options.client_auth)
            self.problem = None
            log.info("HTTPS listener: key %r of keystore %r%s", alias, keystore,
                     f", client certificates checked against truststore {truststore!r}" if trusted else "")
        except (KeystoreUnavailable, ValueError, ssl.SSLError) as exc:
            self.problem = str(exc)
            if self.current is None:
                log.warning("HTTPS listener refuses handshakes until it is configured: %s", exc)
            else:
                log.warning("HTTPS listener keeps its previous certificate: %s", exc)


class ContextCache:
    """Client contexts by what they were built from (store names and revisions), kept across
    snapshots so pooled connections stay usable while nothing they depend on changed."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[Any, ...], ssl.SSLContext | str] = {}

    async def client(self, tx: StoreTransaction, box: SecretBox, truststore: str | None, keystore: str | None,
                     key_alias: str | None, used: dict[tuple[Any, ...], Any]) -> ssl.SSLContext | str:
        """A client context, or why it cannot be built; ``used`` collects what this snapshot uses."""
        signature = (truststore, await _revision(tx, TRUSTSTORE, truststore), keystore, key_alias,
                     await _revision(tx, KEYSTORE, keystore) if key_alias else 0)
        found = used.get(signature) or self._contexts.get(signature)
        if found is None:
            found = await self._build(tx, box, truststore, keystore, key_alias)
        used[signature] = found
        return found

    @staticmethod
    async def _build(tx: StoreTransaction, box: SecretBox, truststore: str | None, keystore: str | None,
                     key_alias: str | None) -> ssl.SSLContext | str:
        try:
            trusted = await load_trusted(tx, box, truststore) if truststore else None
            key = await load_key_pair(tx, box, keystore, key_alias) if keystore and key_alias else None
            return await asyncio.to_thread(client_context, trusted, key)
        except (KeystoreUnavailable, ValueError, ssl.SSLError) as exc:
            return str(exc)

    def keep(self, used: dict[tuple[Any, ...], Any]) -> None:
        self._contexts = used


@dataclass(frozen=True)
class OutboundTls:
    """Client contexts for native services: ``default`` and one per endpoint alias with stores of
    its own; a string in place of a context says why it cannot be used."""

    default: ssl.SSLContext | str
    by_alias: dict[str, ssl.SSLContext | str] = field(default_factory=dict)

    def context_for(self, aliases: tuple[str, ...]) -> ssl.SSLContext | str:
        for name in aliases:
            found = self.by_alias.get(name)
            if found is not None:
                return found
        return self.default


async def record_listener(store: Store, port: int, options: HttpsOptions) -> None:
    """Note the stores a running HTTPS listener names, so they cannot be deleted under it
    (``security.keystore.usage.store_users``); the row goes when the listener stops."""
    body = {"port": port, "keystore": options.keystore, "keyAlias": options.key_alias,
            "truststore": options.truststore, "clientAuth": options.client_auth}
    async with store.transaction() as tx:
        await tx.upsert(LISTENER_KIND, f"https:{port}", body)


async def forget_listener(store: Store, port: int) -> None:
    try:
        async with store.transaction() as tx:
            await tx.delete(LISTENER_KIND, f"https:{port}")
    except Exception:  # stopping must go on; a stale row only keeps refusing deletions
        log.exception("could not remove the record of the HTTPS listener on port %s", port)


TLS_FAILURE = "NATIVE_TLS_ERROR"  # the stable key of a failed handshake with a native service


def note_tls_failure(ex: Exchange, message: str) -> str:
    """Put why the handshake failed on the transaction event (``customFields.nativeTlsError``);
    returns the message for the 502."""
    def hook(event: TransactionEvent) -> None:
        event.custom_fields = {**(event.custom_fields or {}), "nativeTlsError": message}

    ex.policy_state(EVENT_HOOKS)[TLS_FAILURE] = hook
    return message
