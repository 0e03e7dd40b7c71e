"""Composition root: builds the store, the gateway, the management API and the listener."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

import portico
from portico.admin.app import build_admin_app
from portico.admin.context import AdminContext
from portico.admin.event_purge import JOBS as PURGE_JOBS
from portico.admin.global_policies import seed_transaction_logging
from portico.audit.recorder import AuditRecorder
from portico.counters import REDIS_PREFIX, redis_prefix_problem
from portico.events.purge import PurgeJobs
from portico.events.recorder import EventRecorder
from portico.federation.controller import Controller
from portico.federation.ws_server import PATH as FEDERATION_PATH
from portico.federation.ws_server import upgrade_handler
from portico.gateway.reloader import Reloader
from portico.gateway.runtime import Gateway
from portico.gateway.server import HttpServer
from portico.gateway.snapshot import Services, build_snapshot
from portico.gateway.tls import LISTENER, HttpsOptions, ListenerRecord, ListenerTls
from portico.gateway.upstream import UpstreamPool
from portico.oauth.seed import ExpiredTokenRemoval, removal_interval, seed_oauth
from portico.public.app import build_public_app, with_public
from portico.security.passwords import hash_password, verify_password
from portico.security.principal import seed_predefined
from portico.security.secrets import load_secret_box
from portico.store import Store
from portico.store.db import FIRST_START_LOCK, now_ms, sqlite_url_for

log = logging.getLogger("portico")
DEFAULT_ADMIN_PASSWORD = "manage"
ADMIN_USER = "Administrator"


class StartupError(Exception):
    """Portico cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 5555
    data_dir: Path = Path("portico-data")
    db_url: str | None = None
    shutdown_timeout: float = 10.0
    reload_interval: float = 0.25
    redis_url: str | None = None
    redis_prefix: str | None = None  # None: PORTICO_REDIS_PREFIX, else portico:ctr:
    https_port: int | None = None  # an HTTPS listener too (0: a free port); its stores: https
    https: HttpsOptions = HttpsOptions()  # noqa: RUF009 (frozen: a shared default is safe)


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


async def seed_administrator(store: Store) -> bool:
    """Create the Administrator on first start; True if it still has the default password."""
    async with store.transaction() as tx:
        row = await tx.get("user", ADMIN_USER)
        if row is None:
            password = os.environ.get("PORTICO_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
            if password == DEFAULT_ADMIN_PASSWORD:
                log.warning("Administrator created with the default password %r: set PORTICO_ADMIN_PASSWORD "
                            "before the first start, or change it", DEFAULT_ADMIN_PASSWORD)
            body = {"id": ADMIN_USER, "loginId": ADMIN_USER, "passwordHash": hash_password(password), "active": True,
                    "firstName": "System", "lastName": "Administrator", "type": "local", "created": now_ms()}
            await tx.insert("user", ADMIN_USER, body, name=ADMIN_USER)
            stored = str(body["passwordHash"])
        else:
            stored = str(row.body["passwordHash"])
        await seed_predefined(tx, ADMIN_USER)
    return verify_password(DEFAULT_ADMIN_PASSWORD, stored)


class Portico:
    """One running node: listener, gateway, management API, event recorder, hot-deploy watcher."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        redis_prefix = options.redis_prefix
        if redis_prefix is None:
            redis_prefix = os.environ.get("PORTICO_REDIS_PREFIX") or REDIS_PREFIX
        problem = redis_prefix_problem(redis_prefix)
        if problem:
            raise StartupError(f"--redis-prefix {problem}")
        url = options.db_url or os.environ.get("PORTICO_DB_URL")
        if url is None:
            options.data_dir.mkdir(parents=True, exist_ok=True)
            url = sqlite_url_for(options.data_dir)
        self.store = Store(url)
        self.events = EventRecorder(self.store)
        self.audit = AuditRecorder(self.store)
        self.pool = UpstreamPool()
        redis_url = options.redis_url or os.environ.get("PORTICO_REDIS_URL")
        # Secrets at rest (keystore passwords and files) are sealed with this key (security/secrets.py).
        self.secrets = load_secret_box(options.data_dir)
        self.services = Services({"redis_url": redis_url, "redis_prefix": redis_prefix, "store": self.store,
                                  "secrets": self.secrets})
        # The HTTPS listener's TLS, refreshed with every snapshot (gateway/parts/tls.py).
        self.listener_tls = ListenerTls(options.https) if options.https_port is not None else None
        if self.listener_tls is not None:
            self.services.options[LISTENER] = self.listener_tls
        self.https_server: HttpServer | None = None
        self.listener_record: ListenerRecord | None = None  # keeps the HTTPS listener's stores "in use"
        self.gateway: Gateway | None = None
        self.reloader: Reloader | None = None
        self.server: HttpServer | None = None
        self.admin_app: Starlette | None = None  # the management API (/rest/apigateway)
        self.public_app: Starlette | None = None  # the public endpoints (portico/public)
        self.federation: Controller | None = None  # agent links (issue 6)
        self.token_removal = ExpiredTokenRemoval(self.store, removal_interval())  # OAuth tokens (issue 5)
        self.purge_jobs = PurgeJobs(self.store)  # DELETE /apitransactions

    @property
    def port(self) -> int:
        return self.server.port if self.server else 0

    @property
    def https_port(self) -> int:
        return self.https_server.port if self.https_server else 0

    async def start(self) -> None:
        await self.store.migrate()
        default_password = await self._seed()
        if default_password and not is_loopback(self.options.host):
            await self.store.close()
            raise StartupError(
                f"refusing to listen on {self.options.host}: the Administrator still has the default password. "
                "Change it (or start once with PORTICO_ADMIN_PASSWORD set on a fresh data directory), "
                "or listen on 127.0.0.1."
            )
        self.gateway = Gateway(await build_snapshot(self.store, services=self.services), self.pool, self.events)
        self.reloader = Reloader(self.store, self.gateway, self.options.reload_interval)
        self.federation = Controller(self.store, on_change=self.reloader.poke)
        ctx = AdminContext(store=self.store, events=self.events, audit=self.audit, on_change=self.reloader.poke,
                           settle=self.reloader.settle,
                           extras={"services": self.services, "reloader": self.reloader, "secrets": self.secrets,
                                   "federation": self.federation, PURGE_JOBS: self.purge_jobs})
        self.admin_app = admin_app = build_admin_app(ctx)
        # /rest/pub/apigateway, /invoke/pub.apigateway.oauth2, /oauth2, /.well-known: the public endpoints
        self.public_app = build_public_app(ctx)
        asgi_app = with_public(self.public_app, admin_app)
        self.server = HttpServer(self.gateway.handle, asgi_app,
                                 upgrades={FEDERATION_PATH: upgrade_handler(self.federation, admin_app)})
        self.events.start()
        self.audit.start()
        self.reloader.start()
        self.token_removal.start()
        if self.listener_tls is not None:  # bound first: once HTTP answers health, HTTPS is up too
            await self._start_https(asgi_app, admin_app)
        await self.server.start(self.options.host, self.options.port)
        # where other nodes relay federation commands for the agent links this node holds
        await self.federation.advertise(self.options.host, self.port, self.secrets)
        log.info("Portico listening on http://%s:%s (gateway /gateway/, management /rest/apigateway; data plane %s)",
                 self.options.host, self.port, portico.data_plane_kind())

    async def _seed(self) -> bool:
        """What a store needs before it serves (first start, or rows deleted since); True if the
        Administrator still has the default password. Each seed checks for its rows and inserts the
        missing ones, so nodes started together take turns: the next one finds them there."""
        async with self.store.exclusive(FIRST_START_LOCK):
            default_password = await seed_administrator(self.store)
            async with self.store.transaction() as tx:
                await seed_transaction_logging(tx)
            await seed_oauth(self.store, self.secrets)  # the local authorization server, DCR presets, signing key
        return default_password

    async def _start_https(self, asgi_app: Any, admin_app: Any) -> None:
        """The second listener: the same gateway and management API over TLS (issue 5)."""
        assert self.listener_tls is not None and self.gateway is not None and self.federation is not None
        self.https_server = HttpServer(self.gateway.handle, asgi_app,
                                       upgrades={FEDERATION_PATH: upgrade_handler(self.federation, admin_app)})
        await self.https_server.start(self.options.host, self.options.https_port or 0, self.listener_tls.context)
        self.listener_record = ListenerRecord(self.store, self.https_server.port, self.options.https)
        await self.listener_record.start()
        if self.listener_tls.problem:
            log.warning("HTTPS port %s refuses handshakes until its keystore is usable: %s",
                        self.https_server.port, self.listener_tls.problem)
        log.info("Portico listening on https://%s:%s", self.options.host, self.https_server.port)

    async def stop(self) -> None:
        # Both listeners stop accepting at once, then drain together within one grace period:
        # drained one after the other, the second kept taking connections while the first drained
        # and the node took up to twice --shutdown-timeout to stop.
        listeners = [server for server in (self.server, self.https_server) if server is not None]
        for listener in listeners:
            listener.stop_accepting()
        if self.federation is not None:
            await self.federation.close()  # GOOD_BYE to the agents (their links are not listener connections)
        await asyncio.gather(*(listener.shutdown(self.options.shutdown_timeout) for listener in listeners))
        if self.listener_record is not None:
            await self.listener_record.stop()
        # Only now, with every request ended or cut (cut ones record their events), are events flushed.
        if self.reloader is not None:
            await self.reloader.stop()
        await self.token_removal.stop()
        await self.purge_jobs.close()
        await self.events.close(timeout=5.0)
        await self.audit.close(timeout=5.0)
        await self.services.close()
        await self.pool.close()
        await self.store.close()


async def serve(options: ServeOptions) -> None:
    node = Portico(options)
    await node.start()
    # Garbage collection under load: every middle-generation collection promotes the objects of the
    # requests in flight to the oldest generation, and enough promotions set off a full collection,
    # a pause of 200+ ms every few seconds at saturation. Collecting the middle generation ten times
    # less often makes those rare; what start built (modules, the first snapshot, pools) lives as
    # long as the process and is moved out of the collector's reach, so a full one is shorter.
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    await node.stop()
