"""Start-up configuration: the ``local`` authorization server, the shipped DCR providers and the
built-in signing key (each made when missing); and the scheduled removal of expired tokens."""

from __future__ import annotations

import asyncio
import logging
import os

from portico.oauth.config import LOCAL_ID, PRESETS, default_local
from portico.oauth.signing import ensure_builtin_key
from portico.oauth.tokens import TokenStore
from portico.security.secrets import SecretBox
from portico.store import ConflictError, Store
from portico.tasks import stop_task

log = logging.getLogger("portico.oauth")
REMOVAL_INTERVAL_ENV = "PORTICO_OAUTH_TOKEN_REMOVAL_INTERVAL"


async def seed_oauth(store: Store, box: SecretBox) -> None:
    """At every start: the built-in signing key, ``local`` and each shipped provider when missing.
    Each is seeded on its own, so deleting a preset provider restores its shipped settings at the
    next start (a provider whose name is taken by another alias is left alone)."""
    await ensure_builtin_key(store, box)
    local = default_local()
    wanted = [(local.id, local.name, local.model_dump(exclude_none=True))]
    wanted += [(p.id, p.name, p.model_dump(exclude_none=True)) for p in PRESETS]
    async with store.read() as tx:
        rows = await tx.list("alias")
    ids = {r.id for r in rows}
    names = {r.body.get("name") for r in rows}
    for alias_id, name, body in wanted:
        if alias_id in ids or (alias_id != LOCAL_ID and name in names):
            continue
        try:
            async with store.transaction() as tx:
                if await tx.get("alias", alias_id) is None:
                    await tx.insert("alias", alias_id, body, name=name)
                    log.info("seeded the %s alias %r", body.get("type"), name)
        except ConflictError:  # (what StoreTransaction.insert raises for a duplicate key)
            pass  # another node seeded it at the same time


def removal_interval() -> float:
    """Seconds between runs of the expired-token removal (0 turns it off)."""
    return float(os.environ.get(REMOVAL_INTERVAL_ENV, "3600"))


class ExpiredTokenRemoval:
    """Deletes expired and revoked tokens every ``interval`` seconds (like the reference's
    "Remove Expired Tokens" system task)."""

    def __init__(self, store: Store, interval: float) -> None:
        self.tokens = TokenStore(store)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                removed = await self.tokens.purge_expired()
                self.runs += 1
                if removed:
                    log.info("removed %d expired or revoked OAuth tokens", removed)
            except Exception:
                log.exception("removing expired OAuth tokens failed; trying again next time")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
