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


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(2)
    return slots


async def verify_password_async(password: str, stored: str) -> bool:
    """``verify_password`` in a worker thread, at most two at a time per event loop: the hash is
    slow by design, and a flood of wrong passwords must not stall everything else."""
    async with _slots():
        return await asyncio.to_thread(verify_password, password, stored)


async def hash_password_async(password: str) -> str:
    """``hash_password`` off the event loop, sharing the two slots of verification."""
    async with _slots():
        return await asyncio.to_thread(hash_password, password)
