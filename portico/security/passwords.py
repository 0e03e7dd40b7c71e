"""Password hashing: bcrypt for new hashes; scrypt hashes of older stores keep verifying.

Stored forms:

- ``bcrypt$<bcrypt string>``: bcrypt over ``base64(sha256(password))``. Pre-hashing lets any
  password length count in full (bcrypt itself reads only the first 72 bytes) and keeps NUL bytes
  out of bcrypt's input.
- ``$2b$...``: a bare bcrypt string (imported from elsewhere); the password is used as is.
- ``scrypt$n$r$p$salt$hash``: what Portico wrote before bcrypt.

The bcrypt cost is 12 unless ``PORTICO_BCRYPT_ROUNDS`` (4..31) says otherwise; it is read at
each hash, so tests can make hashing cheap."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import bcrypt

DEFAULT_ROUNDS = 12
_BCRYPT_PREFIX = "bcrypt$"


def bcrypt_rounds() -> int:
    raw = os.environ.get("PORTICO_BCRYPT_ROUNDS", "")
    if raw.isdigit() and 4 <= int(raw) <= 31:
        return int(raw)
    return DEFAULT_ROUNDS


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


def hash_password(password: str) -> str:
    digest = bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=bcrypt_rounds()))
    return _BCRYPT_PREFIX + digest.decode()


def _verify_scrypt(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
    )
    return hmac.compare_digest(actual, expected)


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (any of the forms above); False for anything
    malformed."""
    try:
        if stored.startswith(_BCRYPT_PREFIX):
            return bcrypt.checkpw(_prehash(password), stored[len(_BCRYPT_PREFIX):].encode())
        if stored.startswith("$2"):
            raw = password.encode()
            return len(raw) <= 72 and bcrypt.checkpw(raw, stored.encode())
        if stored.startswith("scrypt$"):
            return _verify_scrypt(password, stored)
    except (ValueError, TypeError):
        return False
    return False


def needs_rehash(stored: str) -> bool:
    """True for hashes older than the current scheme (scrypt, bare bcrypt)."""
    return not stored.startswith(_BCRYPT_PREFIX)


# Password hashing is slow by design (tens to hundreds of ms of CPU). It runs in worker threads, at
# most TOTAL_SLOTS at a time per event loop, so a flood of logins cannot take every thread; and each
# *lane* (the login id being tried) holds at most one slot at a time, so a flood of wrong passwords
# for one account queues behind itself instead of starving every other user's login.
TOTAL_SLOTS = 4


class _Slots:
    def __init__(self) -> None:
        self.total = asyncio.Semaphore(TOTAL_SLOTS)
        self.lanes: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def slot(self, lane: str | None) -> AsyncIterator[None]:
        if lane is None:
            async with self.total:
                yield
            return
        lock, users = self.lanes.get(lane) or (asyncio.Lock(), 0)
        self.lanes[lane] = (lock, users + 1)
        try:
            async with lock, self.total:
                yield
        finally:
            lock, users = self.lanes[lane]
            if users <= 1:
                del self.lanes[lane]
            else:
                self.lanes[lane] = (lock, users - 1)


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slots] = weakref.WeakKeyDictionary()


def _slots() -> _Slots:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = _Slots()
    return slots


async def verify_password_async(password: str, stored: str, lane: str | None = None) -> bool:
    """``verify_password`` in a worker thread, within the slots above; ``lane`` is the login id tried
    (None: no per-lane bound, e.g. checking a password history)."""
    async with _slots().slot(lane):
        return await asyncio.to_thread(verify_password, password, stored)


async def hash_password_async(password: str) -> str:
    """``hash_password`` off the event loop, sharing the slots of verification."""
    async with _slots().slot(None):
        return await asyncio.to_thread(hash_password, password)
