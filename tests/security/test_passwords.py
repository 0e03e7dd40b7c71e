"""Password hashing: bcrypt for new hashes, old scrypt hashes still verify (also when signing in)."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest

from portico.security.passwords import (
    DEFAULT_ROUNDS,
    bcrypt_rounds,
    hash_password,
    hash_password_async,
    needs_rehash,
    verify_password,
    verify_password_async,
)
from portico.security.principal import USER
from tests.support.node import Node


def _scrypt(password: str) -> str:
    """A hash in the form Portico wrote before bcrypt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_new_hashes_are_bcrypt_and_verify() -> None:
    stored = hash_password("s3cret-pass")
    assert stored.startswith("bcrypt$$2b$04$")   # tests run at cost 4 (conftest)
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)
    assert not needs_rehash(stored)
    assert hash_password("s3cret-pass") != stored   # salted


def test_cost_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTICO_BCRYPT_ROUNDS")
    assert bcrypt_rounds() == DEFAULT_ROUNDS == 12
    for bad in ("3", "32", "many", ""):
        monkeypatch.setenv("PORTICO_BCRYPT_ROUNDS", bad)
        assert bcrypt_rounds() == DEFAULT_ROUNDS
    monkeypatch.setenv("PORTICO_BCRYPT_ROUNDS", "5")
    assert hash_password("x").startswith("bcrypt$$2b$05$")


def test_long_passwords_count_in_full() -> None:
    """bcrypt reads 72 bytes; the pre-hash makes a difference after them matter."""
    base = "p" * 100
    stored = hash_password(base + "A")
    assert verify_password(base + "A", stored)
    assert not verify_password(base + "B", stored)
    assert verify_password("pässwörd\u00a0€", hash_password("pässwörd\u00a0€"))


def test_scrypt_hashes_still_verify() -> None:
    stored = _scrypt("legacy-pass")
    assert verify_password("legacy-pass", stored)
    assert not verify_password("legacy-Pass", stored)
    assert needs_rehash(stored)


def test_bare_bcrypt_hashes_verify() -> None:
    import bcrypt

    stored = bcrypt.hashpw(b"imported", bcrypt.gensalt(4)).decode()
    assert verify_password("imported", stored)
    assert not verify_password("imported!", stored)
    assert not verify_password("x" * 100, stored)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$1$2", "scrypt$x$8$1$AA==$AA==", "bcrypt$nonsense",
                                    "$2b$04$short", "md5$abc"])
def test_malformed_hashes_never_verify(stored: str) -> None:
    assert not verify_password("anything", stored)


async def test_async_variants() -> None:
    stored = await hash_password_async("async-pass")
    assert await verify_password_async("async-pass", stored)
    assert not await verify_password_async("other", stored)


async def test_user_with_a_scrypt_hash_signs_in(node: Node) -> None:
    async with node.portico.store.transaction() as tx:
        await tx.insert(USER, "old-timer", {"id": "old-timer", "loginId": "old-timer",
                                            "passwordHash": _scrypt("legacy-pass"), "active": True},
                        name="old-timer")
    async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=("old-timer", "legacy-pass")) as c:
        r = await c.post("/users/authenticate")
        assert r.status_code == 200 and r.json()["loginId"] == "old-timer"
    async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=("old-timer", "nope")) as c:
        assert (await c.post("/users/authenticate")).status_code == 401


async def test_a_flood_of_wrong_passwords_for_one_account_does_not_starve_other_logins(
        sqlite_node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Password checks of one login id take one hashing slot at a time: a flood against one account
    queues behind itself while another user signs in at once."""
    import asyncio
    import time

    monkeypatch.setenv("PORTICO_BCRYPT_ROUNDS", "10")   # ~60 ms a check: the flood takes seconds
    stored = hash_password("Right-pass-1")
    async with sqlite_node.portico.store.transaction() as tx:
        for login in ("victim", "bystander"):
            await tx.insert(USER, login, {"id": login, "loginId": login, "passwordHash": stored, "active": True},
                            name=login)
    r = await sqlite_node.admin.put("/configurations/accountLockSettings", json={"isEnabled": "false"})
    assert r.status_code == 200, r.text
    base = f"{sqlite_node.base}/rest/apigateway"
    async with httpx.AsyncClient(base_url=base, auth=("victim", "wrong"), timeout=60) as attacker, \
            httpx.AsyncClient(base_url=base, auth=("bystander", "Right-pass-1"), timeout=60) as bystander:
        started = time.monotonic()
        flood = [asyncio.create_task(attacker.get("/apis")) for _ in range(40)]
        await asyncio.sleep(0.2)
        r = await bystander.get("/apis")
        bystander_done = time.monotonic() - started
        assert r.status_code == 200
        pending = sum(not t.done() for t in flood)
        results = await asyncio.gather(*flood)
        flood_done = time.monotonic() - started
    assert all(x.status_code == 401 for x in results)
    assert pending >= 20, (pending, bystander_done, flood_done)
    assert bystander_done < flood_done / 2, (bystander_done, flood_done)
