"""Per-snapshot lookups the identification rules wait on: Portico users' HTTP basic credentials
(the slow hash off the event loop, successes remembered) and reverse DNS of client addresses."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time

from portico.security.passwords import verify_password, verify_password_async


class UserCredentials:
    """Verifies HTTP basic credentials of Portico users; remembers successes (scrypt is slow by design)."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self._hashes = hashes
        self._verified: dict[bytes, bool] = {}

    async def verify_async(self, user: str, password: str) -> bool:
        """``verify`` with the slow hash off the event loop (a flood of wrong passwords must not
        stall every other request); at most two hashes run at once."""
        stored = self._hashes.get(user)
        if stored is None:
            return False
        if self._token(user, password, stored) in self._verified:
            return True
        ok = await verify_password_async(password, stored)
        if ok:
            self._remember(self._token(user, password, stored))
        return ok

    @staticmethod
    def _token(user: str, password: str, stored: str) -> bytes:
        return hashlib.sha256(f"{user}\0{password}\0{stored}".encode()).digest()

    def verify(self, user: str, password: str) -> bool:
        stored = self._hashes.get(user)
        if stored is None:
            return False
        token = self._token(user, password, stored)
        if token in self._verified:
            return True
        ok = verify_password(password, stored)
        if ok:
            self._remember(token)
        return ok

    def _remember(self, token: bytes) -> None:
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = True


class HostNames:
    """Reverse DNS of client addresses, cached for a minute."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def names_of(self, ip: str) -> tuple[str, ...]:
        now = time.monotonic()
        hit = self._cache.get(ip)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            host, _ = await asyncio.get_running_loop().getnameinfo((ip, 0), socket.NI_NAMEREQD)
            names: tuple[str, ...] = (host.lower(), ip)
        except OSError:
            names = (ip,)
        self._cache[ip] = (now + 60.0, names)
        return names
