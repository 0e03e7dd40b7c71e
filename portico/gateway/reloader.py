"""Hot deploy: watch the store's configuration revision and swap in a fresh snapshot.

Every committed change moves the revision. Each node polls it (a cheap one-row
read) and rebuilds off the request path, so a change made on any node is in
force everywhere within about one poll interval. ``poke()`` skips the wait for
changes made by this process."""

from __future__ import annotations

import asyncio
import logging

from portico.gateway.runtime import Gateway
from portico.gateway.snapshot import build_snapshot
from portico.store import Store
from portico.tasks import stop_task, wait_event

log = logging.getLogger("portico.gateway")


class Reloader:
    def __init__(self, store: Store, gateway: Gateway, interval: float = 0.25) -> None:
        self._store = store
        self._gateway = gateway
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.last_error: str | None = None  # why the last rebuild failed; None when in force

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="portico-reloader")

    def poke(self) -> None:
        self._wake.set()

    async def reload_now(self) -> None:
        """Rebuild if the revision moved; used after local writes (so a management call returns
        once its change is in force here) and by tests. One rebuild at a time."""
        async with self._lock:
            revision = await self._store.config_revision()
            if revision != self._gateway.snapshot.revision:
                current = self._gateway.snapshot
                self._gateway.swap(await build_snapshot(self._store, current.hostnames, current.services))
            self.last_error = None

    async def settle(self) -> None:
        """``reload_now`` for the management API: a failing rebuild is logged, not raised (the
        write itself succeeded), and reported by health."""
        try:
            await self.reload_now()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("configuration reload after a change failed")

    async def _loop(self) -> None:
        while True:
            await wait_event(self._wake, self._interval)
            self._wake.clear()
            try:
                await self.reload_now()
            except Exception as exc:  # a broken store must not kill hot deploy; keep the last good snapshot
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("configuration reload failed; still serving revision %s",
                              self._gateway.snapshot.revision)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
