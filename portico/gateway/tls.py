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
import os
import secrets
import socket
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
    store_version,
)
from portico.security.keystore.tls import ClientAuth, client_context, server_context
from portico.security.secrets import SecretBox
from portico.store import Store, StoreTransaction
from portico.store.db import now_ms
from portico.tasks import stop_task

if TYPE_CHECKING:
    from portico.events.model import TransactionEvent

log = logging.getLogger("portico.tls")

OUTBOUND = "outbound_tls"  # snap.extras key: an OutboundTls
LISTENER = "https_listener"  # Services.options key: the ListenerTls of this node, if any
CACHE = "tls_contexts"  # Services item: the ContextCache
LISTENER_KIND = "listener"  # stored rows naming the stores a running HTTPS listener uses (ListenerRecord)


@dataclass(frozen=True)
class HttpsOptions:
    """The HTTPS listener's stores; None falls back to the inbound defaults of /configurations/keystore."""

    keystore: str | None = None
    key_alias: str | None = None
    truststore: str | None = None
    client_auth: ClientAuth = "none"


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
        """(keystore, key alias, truststore) in force: the options, else the inbound defaults (each
        of the keystore with its key alias, and the truststore, on its own)."""
        o = self.options
        defaults = await read_defaults(tx)
        truststore = o.truststore or defaults["truststoreName"]
        if o.keystore:
            return o.keystore, o.key_alias, truststore
        return defaults["keystoreName"], defaults["signingAlias"], truststore

    async def refresh(self, tx: StoreTransaction, box: SecretBox) -> None:
        keystore, alias, truststore = await self.names(tx)
        signature = (keystore, alias, truststore, await store_version(tx, KEYSTORE, keystore),
                     await store_version(tx, TRUSTSTORE, truststore))
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
        signature = (truststore, await store_version(tx, TRUSTSTORE, truststore), keystore, key_alias,
                     await store_version(tx, KEYSTORE, keystore) if key_alias else (0, 0))
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


HEARTBEAT_ENV = "PORTICO_LISTENER_HEARTBEAT_SECONDS"
HEARTBEAT_SECONDS = 10.0
STALE_AFTER_BEATS = 3  # a record not refreshed for this many intervals belongs to a node that is gone


def heartbeat_interval() -> float:
    """Seconds between refreshes of a listener record (``PORTICO_LISTENER_HEARTBEAT_SECONDS``)."""
    raw = os.environ.get(HEARTBEAT_ENV)
    try:
        value = float(raw) if raw else HEARTBEAT_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number; using %s", HEARTBEAT_ENV, raw, HEARTBEAT_SECONDS)
        value = HEARTBEAT_SECONDS
    return max(value, 0.1)


class ListenerRecord:
    """The stored note of a running HTTPS listener started with stores of its own, so they cannot
    be deleted under it (``security.keystore.usage.store_users``).

    The row (kind ``listener``, one per process and port) carries ``expiresAt``: the running node
    pushes it forward every ``interval`` seconds and deletes the row when it stops. A node that is
    killed or cut off stops refreshing, and once ``expiresAt`` is past every node reads the record
    as gone (nodes' clocks must agree to within about one interval). The writes leave the
    configuration revision alone: the gateway never reads these rows."""

    def __init__(self, store: Store, port: int, options: HttpsOptions, interval: float | None = None) -> None:
        self.store = store
        self.port = port
        self.options = options
        self.interval = interval or heartbeat_interval()
        self.id = f"https:{socket.gethostname()}:{port}:{secrets.token_hex(6)}"
        self._task: asyncio.Task[None] | None = None

    def _body(self) -> dict[str, Any]:
        o, now = self.options, now_ms()
        return {"port": self.port, "host": socket.gethostname(), "pid": os.getpid(), "keystore": o.keystore,
                "keyAlias": o.key_alias, "truststore": o.truststore, "clientAuth": o.client_auth,
                "heartbeatAt": now, "expiresAt": now + int(self.interval * STALE_AFTER_BEATS * 1000)}

    async def _write(self, drop_stale: bool = False) -> None:
        async with self.store.transaction() as tx:
            if drop_stale:  # records of nodes that are gone: ignored already, removed to keep things tidy
                now = now_ms()
                for row in await tx.list(LISTENER_KIND):
                    if row.id != self.id and int(row.body.get("expiresAt") or 0) < now:
                        await tx.delete(LISTENER_KIND, row.id)
            await tx.upsert(LISTENER_KIND, self.id, self._body())
            tx.changed = False  # no configuration change: the revision stays

    async def start(self) -> None:
        await self._write(drop_stale=True)
        self._task = asyncio.create_task(self._beat(), name=f"https-listener-record-{self.port}")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._write()
            except Exception:  # the store may be back at the next beat; until then the record may expire
                log.exception("could not refresh the record of the HTTPS listener on port %s", self.port)

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        try:
            async with self.store.transaction() as tx:
                await tx.delete(LISTENER_KIND, self.id)
                tx.changed = False
        except Exception:  # stopping must go on; the record expires by itself
            log.exception("could not remove the record of the HTTPS listener on port %s", self.port)


TLS_FAILURE = "NATIVE_TLS_ERROR"  # the stable key of a failed handshake with a native service


def note_tls_failure(ex: Exchange, message: str) -> str:
    """Put why the handshake failed on the transaction event (``customFields.nativeTlsError``);
    returns the message for the 502."""
    def hook(event: TransactionEvent) -> None:
        event.custom_fields = {**(event.custom_fields or {}), "nativeTlsError": message}

    ex.policy_state(EVENT_HOOKS)[TLS_FAILURE] = hook
    return message
