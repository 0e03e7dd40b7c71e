"""Management sessions: the cookie of POST /users/authenticate, its limits, logout, and the audit log."""

from __future__ import annotations

import asyncio

import httpx

from portico.security import privileges as priv
from portico.security import sessions
from tests.admin.test_audit import audit_records
from tests.admin.test_users import PASSWORD, client, create_user, join_group
from tests.security.test_lockout import LOCK
from tests.support.node import Node


def cookie_client(node: Node, cookie: str) -> httpx.AsyncClient:
    """A client sending only the session cookie (no Authorization header)."""
    return httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", timeout=30,
                             headers={"Cookie": f"{sessions.COOKIE}={cookie}"})


async def login(node: Node, user: str, password: str = PASSWORD) -> str:
    async with client(node, user, password) as c:
        r = await c.post("/users/authenticate")
    assert r.status_code == 200, r.text
    header = r.headers["set-cookie"]
    attributes = {part.strip().split("=")[0] for part in header.split(";")}
    assert {"HttpOnly", "SameSite", "Path"} <= attributes, header
    assert "SameSite=Strict" in header and "Path=/rest" in header
    value = header.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43   # 256 random bits, base64url
    return value


async def test_login_cookie_call_logout_refused_and_audited(node: Node) -> None:
    user = await create_user(node, "sam")
    await join_group(node, priv.PROVIDERS, user["id"])
    revision = await node.portico.store.config_revision()
    cookie = await login(node, "sam")
    async with node.portico.store.read() as tx:   # only the digest is stored
        rows = await tx.list(sessions.KIND)
        assert len(rows) == 1 and cookie not in str(rows[0].body) and rows[0].id == sessions.digest(cookie)
    async with cookie_client(node, cookie) as c:
        r = await c.post("/applications", json={"name": "by-session"})   # the user's privileges
        assert r.status_code in (200, 201), r.text
        r = await c.put("/configurations/settings", json={})
        assert r.status_code == 403 and priv.MANAGE_GENERAL_CONFIG in r.json()["errorDetails"]
        r = await c.post("/users/authenticate")   # a session is no new login: no new cookie
        assert r.status_code == 200 and r.json()["loginId"] == "sam" and "set-cookie" not in r.headers
        r = await c.post("/users/logout")
        assert r.status_code == 204
        assert "Max-Age=0" in r.headers["set-cookie"]
        r = await c.get("/apis")
        assert r.status_code == 401 and "session" in r.json()["errorDetails"]
    async with node.portico.store.read() as tx:
        assert await tx.list(sessions.KIND) == []
    # sessions and their end do not move the configuration revision (one write: the application)
    assert await node.portico.store.config_revision() == revision + 1

    records = await audit_records(node, sortByField="creationDate", sortOrder="ASC")
    logins = [(r["action"], r["object"], r["user"]) for r in records if r["objectType"] == "Login"]
    assert logins == [("Login", "sam", "sam"), ("Logout", "sam", "sam")]
    created = [r for r in records if r["objectType"] == "Application"]
    assert created and created[0]["user"] == "sam"


async def test_logout_with_basic_credentials_records_the_logout(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "tia")
    async with client(sqlite_node, "tia") as c:
        r = await c.post("/users/logout")
        assert r.status_code == 204 and "set-cookie" not in r.headers
    records = await audit_records(sqlite_node)
    assert [(r["action"], r["object"]) for r in records if r["objectType"] == "Login"] == [("Logout", "tia")]


async def test_idle_and_lifetime_limits_from_the_extended_settings(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "uma")
    r = await sqlite_node.admin.put("/configurations/settings",
                                    json={"extendedKeys": {sessions.IDLE_SETTING: "0.02"}})   # 1.2 s
    assert r.status_code == 200, r.text
    cookie = await login(sqlite_node, "uma")
    async with cookie_client(sqlite_node, cookie) as c:
        assert (await c.get("/apis")).status_code == 200
        await asyncio.sleep(1.5)
        r = await c.get("/apis")
        assert r.status_code == 401 and "idle" in r.json()["errorDetails"]
    r = await sqlite_node.admin.put("/configurations/settings", json={"extendedKeys": {
        sessions.IDLE_SETTING: "30", sessions.LIFETIME_SETTING: "0.0003"}})   # ~1 s
    assert r.status_code == 200, r.text
    cookie = await login(sqlite_node, "uma")
    async with cookie_client(sqlite_node, cookie) as c:
        assert (await c.get("/apis")).status_code == 200
        await asyncio.sleep(1.3)
        r = await c.get("/apis")
        assert r.status_code == 401 and "lifetime" in r.json()["errorDetails"]
    r = await sqlite_node.admin.put("/configurations/settings",
                                    json={"extendedKeys": {sessions.IDLE_SETTING: "soon"}})
    assert r.status_code == 400 and sessions.IDLE_SETTING in r.json()["errorDetails"]


async def test_garbage_cookies_and_credentials_win_over_cookies(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "vic")
    for value in ("x", "A" * 43, "%00" * 20):
        async with cookie_client(sqlite_node, value) as c:
            r = await c.get("/apis")
            assert r.status_code == 401 and "session" in r.json()["errorDetails"]
    cookie = await login(sqlite_node, "vic")
    async with httpx.AsyncClient(base_url=f"{sqlite_node.base}/rest/apigateway", auth=("vic", "wrong"),
                                 headers={"Cookie": f"{sessions.COOKIE}={cookie}"}) as c:
        assert (await c.get("/apis")).status_code == 401   # the Authorization header is what counts


async def test_sessions_end_with_a_password_change_a_deactivation_and_a_lock(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "wes")
    first, second = await login(sqlite_node, "wes"), await login(sqlite_node, "wes")
    async with cookie_client(sqlite_node, first) as c:   # a session changes its password with the old one
        r = await c.put("/users/wes", json={"password": "New-pass-word-1", "oldPassword": PASSWORD})
        assert r.status_code == 200, r.text
        assert (await c.get("/apis")).status_code == 200   # the changing session stays
    async with cookie_client(sqlite_node, second) as c:
        assert (await c.get("/apis")).status_code == 401   # the other one ended
    third = await login(sqlite_node, "wes", "New-pass-word-1")
    await sqlite_node.admin.put("/configurations/accountLockSettings", json={**LOCK, "maximumLoginAttempts": "1"})
    async with client(sqlite_node, "wes", "wrong") as c:
        assert (await c.get("/apis")).status_code == 401   # locks the account
    async with cookie_client(sqlite_node, third) as c:
        r = await c.get("/apis")
        assert r.status_code == 401 and "locked" in r.json()["errorDetails"]
    assert (await sqlite_node.admin.post("/is/lockedAccounts", json={"unLockAccounts": {"userName": ["wes"]}})
            ).status_code == 200
    async with cookie_client(sqlite_node, third) as c:
        assert (await c.get("/apis")).status_code == 200
        assert (await sqlite_node.admin.put("/users/wes", json={"active": False})).status_code == 200
        assert (await c.get("/apis")).status_code == 401


async def test_a_session_creates_no_access_token(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "xia")
    cookie = await login(sqlite_node, "xia")
    async with cookie_client(sqlite_node, cookie) as c:
        r = await c.post("/users/xia/tokens", json={"name": "t"})
        assert r.status_code == 403 and "password credentials" in r.json()["errorDetails"]
