"""First-start configuration: the ``local`` authorization server, the shipped DCR providers and
the built-in signing key; and the scheduled removal of expired tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from sqlalchemy.exc import IntegrityError

from portico.oauth.config import LOCAL_ID, PRESETS, default_local
from portico.oauth.signing import ensure_builtin_key
from portico.oauth.tokens import TokenStore
from portico.security.secrets import SecretBox
from portico.store import Store

log = logging.getLogger("portico.oauth")
REMOVAL_INTERVAL_ENV = "PORTICO_OAUTH_TOKEN_REMOVAL_INTERVAL"


async def seed_oauth(store: Store, box: SecretBox) -> None:
    await ensure_builtin_key(store, box)
    async with store.read() as tx:
        if await tx.get("alias", LOCAL_ID) is not None:
            return
    try:
        async with store.transaction() as tx:
            if await tx.get("alias", LOCAL_ID) is not None:
                return
            local = default_local()
            await tx.insert("alias", local.id, local.model_dump(exclude_none=True), name=local.name)
            names = {r.body.get("name") for r in await tx.list("alias")}
            for preset in PRESETS:
                if preset.name not in names and await tx.get("alias", preset.id) is None:
                    await tx.insert("alias", preset.id, preset.model_dump(exclude_none=True), name=preset.name)
    except IntegrityError:
        pass  # another node seeded at the same time


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
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
