"""Account lock after repeated failed logins; /is/lockedAccounts lists and unlocks."""

from __future__ import annotations

from typing import Any

import httpx

from portico.security.login_state import KIND
from portico.store.db import now_ms
from tests.admin.test_users import client, create_user
from tests.support.node import Node

LOCK = {"isEnabled": "true", "maximumLoginAttempts": "3", "timeInterval": "10", "timeIntervalUnit": "Minutes",
        "blockDuration": "1", "blockDurationUnit": "Hours"}


async def _fail(node: Node, login: str, times: int) -> list[httpx.Response]:
    out = []
    async with client(node, login, "wrong-password") as c:
        for _ in range(times):
            out.append(await c.get("/apis"))
    return out


async def test_lock_settings_document(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.get("/configurations/accountLockSettings")
    assert r.status_code == 200
    assert r.json()["isEnabled"] == "true" and r.json()["appliesToUsers"] == "allUsersExceptPredefinedUsers"
    r = await sqlite_node.admin.put("/configurations/accountLockSettings", json=LOCK)
    assert r.status_code == 200 and r.json()["maximumLoginAttempts"] == "3" and r.json()["blockDurationUnit"] == "Hours"
    for bad, named in (({"maximumLoginAttempts": "0"}, "maximumLoginAttempts"),
                       ({"blockDurationUnit": "Weeks"}, "blockDurationUnit"),
                       ({"appliesToUsers": "some"}, "appliesToUsers"),
                       ({"lockForever": True}, "lockForever")):
        r = await sqlite_node.admin.put("/configurations/accountLockSettings", json=bad)
        assert r.status_code == 400 and named in r.json()["errorDetails"], r.text
    assert (await sqlite_node.admin.get("/configurations/accountLockSettings")).json()["maximumLoginAttempts"] == "3"


async def test_lock_and_unlock(node: Node) -> None:
    await create_user(node, "rita")
    await create_user(node, "sam")
    assert (await node.admin.put("/configurations/accountLockSettings", json=LOCK)).status_code == 200
    revision = await node.portico.store.config_revision()

    responses = await _fail(node, "rita", 3)
    assert [r.status_code for r in responses] == [401, 401, 401]
    assert "now locked" in responses[-1].json()["errorDetails"]
    async with client(node, "rita") as c:   # the right password no longer helps
        r = await c.get("/apis")
        assert r.status_code == 401 and "locked" in r.json()["errorDetails"]
    # failed logins leave the gateway's configuration revision alone
    assert await node.portico.store.config_revision() == revision

    r = await node.admin.get("/is/lockedAccounts")
    assert r.status_code == 200 and r.json() == {"lockedAccounts": ["rita"]}
    async with client(node, "sam") as c:
        assert (await c.get("/apis")).status_code == 200

    r = await node.admin.post("/is/lockedAccounts", json={"unLockAccounts": {"userName": ["ghost"]}})
    assert r.status_code == 400 and "ghost" in r.json()["errorDetails"]
    bad: dict[str, Any]
    for bad in ({}, {"unLockAccounts": {"userName": []}}, {"unLockAccounts": "rita"}):
        assert (await node.admin.post("/is/lockedAccounts", json=bad)).status_code == 400
    r = await node.admin.post("/is/lockedAccounts", json={"unLockAccounts": {"userName": ["rita"]}})
    assert r.status_code == 200 and r.json() == {"lockedAccounts": []}
    async with client(node, "rita") as c:
        assert (await c.get("/apis")).status_code == 200


async def test_success_resets_the_count_and_old_failures_expire(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "tess")
    await sqlite_node.admin.put("/configurations/accountLockSettings", json=LOCK)
    await _fail(sqlite_node, "tess", 2)
    async with client(sqlite_node, "tess") as c:
        assert (await c.get("/apis")).status_code == 200
    await _fail(sqlite_node, "tess", 2)
    async with client(sqlite_node, "tess") as c:
        assert (await c.get("/apis")).status_code == 200
    # failures older than the interval do not count
    await _fail(sqlite_node, "tess", 2)
    async with sqlite_node.portico.store.transaction() as tx:
        row = (await tx.list(KIND))[0]
        old = now_ms() - 11 * 60_000
        await tx.update(KIND, row.id, {**row.body, "failures": [old, old]}, row.revision, name="tess")
    await _fail(sqlite_node, "tess", 1)
    async with client(sqlite_node, "tess") as c:
        assert (await c.get("/apis")).status_code == 200


async def test_lock_ends_after_the_block_duration(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "uma")
    await sqlite_node.admin.put("/configurations/accountLockSettings", json=LOCK)
    await _fail(sqlite_node, "uma", 3)
    assert (await sqlite_node.admin.get("/is/lockedAccounts")).json()["lockedAccounts"] == ["uma"]
    async with sqlite_node.portico.store.transaction() as tx:
        row = (await tx.list(KIND))[0]
        await tx.update(KIND, row.id, {**row.body, "lockedUntil": now_ms() - 1}, row.revision, name="uma")
    assert (await sqlite_node.admin.get("/is/lockedAccounts")).json()["lockedAccounts"] == []
    async with client(sqlite_node, "uma") as c:
        assert (await c.get("/apis")).status_code == 200


async def test_predefined_users_are_spared_unless_all_users(sqlite_node: Node) -> None:
    settings: dict[str, Any] = {**LOCK, "maximumLoginAttempts": "2"}
    await sqlite_node.admin.put("/configurations/accountLockSettings", json=settings)
    await _fail(sqlite_node, "Administrator", 3)
    assert (await sqlite_node.admin.get("/apis")).status_code == 200
    await sqlite_node.admin.put("/configurations/accountLockSettings", json={"appliesToUsers": "allUsers"})
    await _fail(sqlite_node, "Administrator", 2)
    assert (await sqlite_node.admin.get("/apis")).status_code == 401


async def test_disabled_locking_counts_nothing(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "vic")
    await sqlite_node.admin.put("/configurations/accountLockSettings", json={**LOCK, "isEnabled": "false"})
    await _fail(sqlite_node, "vic", 5)
    async with client(sqlite_node, "vic") as c:
        assert (await c.get("/apis")).status_code == 200
    async with sqlite_node.portico.store.read() as tx:
        assert await tx.list(KIND) == []


async def test_an_administrator_setting_a_new_password_unlocks(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "walt")
    await sqlite_node.admin.put("/configurations/accountLockSettings", json=LOCK)
    await _fail(sqlite_node, "walt", 3)
    assert (await sqlite_node.admin.put("/users/walt", json={"password": "Walt-new-pw-1"})).status_code == 200
    async with client(sqlite_node, "walt", "Walt-new-pw-1") as c:
        assert (await c.get("/apis")).status_code == 200


async def test_the_user_id_is_no_login_and_counts_no_failure(node: Node) -> None:
    """Wrong passwords sent under a user's id are an unknown user's: they lock nobody."""
    user = await create_user(node, "xena")
    assert (await node.admin.put("/configurations/accountLockSettings", json=LOCK)).status_code == 200
    responses = await _fail(node, user["id"], 4)
    assert [r.status_code for r in responses] == [401] * 4
    assert all("locked" not in r.json()["errorDetails"] for r in responses)
    async with node.portico.store.read() as tx:
        assert await tx.list(KIND) == []
    async with client(node, "xena") as c:
        assert (await c.get("/apis")).status_code == 200


async def test_a_lock_follows_the_user_through_a_login_id_change(node: Node) -> None:
    """Lock state is kept under the user id, so a renamed account stays locked and is listed (and
    unlocked) under its login id of now."""
    user = await create_user(node, "yann")
    assert (await node.admin.put("/configurations/accountLockSettings", json=LOCK)).status_code == 200
    await _fail(node, "yann", 3)
    r = await node.admin.put(f"/users/{user['id']}", json={"loginId": "yannick"})
    assert r.status_code == 200, r.text
    async with client(node, "yannick") as c:
        r = await c.get("/apis")
        assert r.status_code == 401 and "locked" in r.json()["errorDetails"]
    r = await node.admin.get("/is/lockedAccounts")
    assert r.status_code == 200 and r.json() == {"lockedAccounts": ["yannick"]}
    r = await node.admin.post("/is/lockedAccounts", json={"unLockAccounts": {"userName": ["yannick"]}})
    assert r.status_code == 200 and r.json() == {"lockedAccounts": []}
    async with client(node, "yannick") as c:
        assert (await c.get("/apis")).status_code == 200
