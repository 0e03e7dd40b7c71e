"""Snapshot part: global IP access on failed authentication (issue 5), as ``snap.extras["ipDeny"]``
(an :class:`IpGuard`), present only while the setting is enabled, so the gateway pays one dictionary
lookup per request when it is off.

``/configurations/denyByIPForFailedAuthConfig`` (``admin/ip_deny.py``): after
``maximumFailedAuthRequests`` failed authentications (a 401, or a 403 that says the caller or its
application could not be identified) from one client IP within ``maximumFailedAuthRequestsDuration``
seconds, the IP is either added to ``deniedIPList`` (``DENY``: written to the settings document, so
every node sees it at its next snapshot; until then the node that decided denies it at once) or
blocked for ``blockIntervalInSeconds`` (``BLOCK``). The client IP is the one the gateway reports
(``X-Forwarded-For`` honoured unless ``watt.server.enterprisegateway.ignoreXForwardedForHeader``).
Failures and blocks are counted in ``portico/counters`` (memory, or Redis shared by nodes). A block
is stored as its end time (epoch ms) in the counter of the current block-length window and of the
next one (the end always falls in one of the two), so a check is one counter read."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from functools import lru_cache
from typing import Any

from portico.counters import Counters, CounterUnavailable, Window, counters_of, window_for
from portico.gateway.snapshot import Snapshot, snapshot_part
from portico.store import ConflictError, Store, StoreTransaction

log = logging.getLogger("portico.gateway")

EXTRAS = "ipDeny"
KIND, CONFIG_ID = "settings", "denyByIPForFailedAuthConfig"
DEFAULTS: dict[str, Any] = {"isEnabled": "false", "maximumFailedAuthRequests": "6",
                            "maximumFailedAuthRequestsDuration": "60", "whenLimitExceeds": "BLOCK",
                            "blockIntervalInSeconds": "60", "deniedIPList": []}
# 403s that mean "who are you?" rather than "you may not": they count as failed authentication.
IDENTIFICATION_FAILURES = frozenset({"APPLICATION_NOT_IDENTIFIED", "INVALID_API_KEY", "API_KEY_EXPIRED"})
DENIED_MESSAGE = "The client IP address is denied access after repeated authentication failures."
BLOCKED_MESSAGE = "The client IP address is blocked for a while after repeated authentication failures."


def counts_as_failure(status: int, key: str) -> bool:
    return status == 401 or (status == 403 and key in IDENTIFICATION_FAILURES)


async def read_config(tx: StoreTransaction) -> dict[str, Any]:
    row = await tx.get(KIND, CONFIG_ID)
    return {**DEFAULTS, **(row.body if row is not None else {})}


async def add_denied(store: Store, ip: str, attempts: int = 20) -> None:
    """Put ``ip`` on the stored deny list (moves the configuration revision: every node reloads).
    The write is checked against the revision read, and tried again when another node (or an
    administrator's PUT) wrote the list meanwhile: no denial is lost."""
    for attempt in range(attempts):
        try:
            async with store.transaction() as tx:
                row = await tx.get(KIND, CONFIG_ID)
                config = {**DEFAULTS, **(row.body if row is not None else {})}
                if ip in config["deniedIPList"]:
                    return
                config["deniedIPList"] = [*config["deniedIPList"], ip]
                if row is None:
                    await tx.insert(KIND, CONFIG_ID, config)
                else:
                    await tx.update(KIND, CONFIG_ID, config, row.revision)
            return
        except ConflictError:
            await asyncio.sleep(0.01 * (attempt + 1))
    raise ConflictError(f"the deny list kept changing; {ip} was not added")


@lru_cache(maxsize=4096)
def canonical(ip: str) -> str | None:
    """The address in its one written form (``2001:DB8:0::1`` -> ``2001:db8::1``), or None when the
    client's text (``X-Forwarded-For``) is no address: such a value is counted and refused on this
    node but never written to the stored deny list."""
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        return None


def _block_key(ip: str, window: Window) -> str:
    # one key per window: the memory backend keeps one window per key
    return f"ipdeny:block:{ip}@{window.start_ms}"


class IpGuard:
    """The compiled setting; ``refusal`` runs before every gateway call while it is enabled."""

    def __init__(self, config: dict[str, Any], counters: Counters, store: Store | None) -> None:
        self.denied = set(config["deniedIPList"])
        self.limit = max(int(config["maximumFailedAuthRequests"]), 1)
        self.window_s = max(int(config["maximumFailedAuthRequestsDuration"]), 1)
        self.deny = config["whenLimitExceeds"] == "DENY"
        self.block_s = max(int(config["blockIntervalInSeconds"]), 1)
        self.counters = counters
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    async def refusal(self, ip: str) -> str | None:
        """Why ``ip`` is refused (a message), or None."""
        ip = canonical(ip) or ip
        if ip in self.denied:
            return DENIED_MESSAGE
        if self.deny:
            return None
        now = int(time.time() * 1000)
        try:
            window = window_for(now, self.block_s, "seconds")
            until = await self.counters.get(_block_key(ip, window), window)
        except CounterUnavailable:
            return None  # fail open: a counter outage must not lock every client out
        return BLOCKED_MESSAGE if until > now else None

    async def failed(self, ip: str) -> None:
        """Count one failed authentication from ``ip``; past the limit, deny or block it."""
        address = canonical(ip)
        ip = address or ip
        now = int(time.time() * 1000)
        try:
            count = await self.counters.add(f"ipdeny:fail:{ip}", window_for(now, self.window_s, "seconds"))
            if count < self.limit:
                return
            if self.deny:
                self.denied.add(ip)
                if self.store is not None and address is not None:
                    task = asyncio.create_task(self._persist(ip))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                return
            until = now + self.block_s * 1000
            current = window_for(now, self.block_s, "seconds")
            following = Window(current.end_ms, current.end_ms + current.length_ms)
            for window in (current, following):
                await self.counters.put(_block_key(ip, window), window, until)
        except CounterUnavailable:
            log.warning("failed authentication from %s not counted: counters unavailable", ip)

    async def _persist(self, ip: str) -> None:
        try:
            assert self.store is not None
            await add_denied(self.store, ip)
        except Exception:
            log.exception("could not add %s to the deny list", ip)


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    config = await read_config(tx)
    if config.get("isEnabled") != "true":
        return
    snap.extras[EXTRAS] = IpGuard(config, counters_of(snap.services), snap.services.options.get("store"))
