"""Personal access tokens: issue, list, revoke, expiry, and Bearer access with the user's privileges."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from portico.security import privileges as priv
from portico.security import tokens
from portico.store.db import now_ms
from tests.admin.test_users import client, create_user, join_group
from tests.support.node import Node


def bearer(node: Node, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway",
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def _provider(node: Node, login: str = "pia") -> dict[str, Any]:
    user = await create_user(node, login)
    await join_group(node, priv.PROVIDERS, user["id"])
    return user


async def test_issue_use_list_revoke(node: Node) -> None:
    user = await _provider(node)
    async with client(node, "pia") as c:
        r = await c.post("/users/pia/tokens", json={"name": "ci", "expiresInDays": 7})
        assert r.status_code == 201, r.text
        issued = r.json()
        assert set(issued) >= {"id", "name", "token", "expirationDate"} and issued["name"] == "ci"
        assert issued["expirationDate"].endswith("GMT")
        r = await c.get(f"/users/{user['id']}/tokens")
        assert r.status_code == 200
        listed = r.json()["tokens"]
        assert [t["id"] for t in listed] == [issued["id"]] and listed[0]["expired"] is False
        assert issued["token"] not in r.text and "token" not in listed[0]
    async with node.portico.store.read() as tx:   # only the digest is stored
        row = await tx.get(tokens.KIND, issued["id"])
        assert row is not None and issued["token"] not in str(row.body)

    async with bearer(node, issued["token"]) as b:
        assert (await b.get("/apis")).status_code == 200
        assert (await b.post("/applications", json={"name": "by-token"})).status_code in (200, 201)
        r = await b.put("/configurations/settings", json={})   # a provider's token: a provider's privileges
        assert r.status_code == 403 and priv.MANAGE_GENERAL_CONFIG in r.json()["errorDetails"]
        r = await b.post("/users/authenticate")
        assert r.status_code == 200 and r.json()["loginId"] == "pia"
        r = await b.post("/users/pia/tokens", json={"name": "successor"})
        assert r.status_code == 403 and "password" in r.json()["errorDetails"]

    async with client(node, "pia") as c:
        assert (await c.delete(f"/users/pia/tokens/{issued['id']}")).status_code == 204
        assert (await c.delete(f"/users/pia/tokens/{issued['id']}")).status_code == 404
        assert (await c.get("/users/pia/tokens")).json() == {"tokens": []}
    async with bearer(node, issued["token"]) as b:
        r = await b.get("/apis")
        assert r.status_code == 401 and "revoked" in r.json()["errorDetails"]


async def test_expired_token_is_refused(node: Node) -> None:
    await create_user(node, "quentin")
    async with client(node, "quentin") as c:
        issued = (await c.post("/users/quentin/tokens", json={"name": "short"})).json()
    async with node.portico.store.transaction() as tx:
        row = await tx.get(tokens.KIND, issued["id"])
        assert row is not None
        await tx.update(tokens.KIND, row.id, {**row.body, "expires": now_ms() - 1}, row.revision,
                        name=tokens.digest(issued["token"]))
    async with bearer(node, issued["token"]) as b:
        r = await b.get("/apis")
        assert r.status_code == 401 and "expired" in r.json()["errorDetails"]
    async with client(node, "quentin") as c:
        assert (await c.get("/users/quentin/tokens")).json()["tokens"][0]["expired"] is True


async def test_token_dies_with_its_user_and_follows_privilege_changes(node: Node) -> None:
    user = await create_user(node, "rosa")
    async with client(node, "rosa") as c:
        r = await c.post(f"/users/{user['id']}/tokens", json={"name": "rosa-ci"})
    assert r.status_code == 201
    token = r.json()["token"]
    async with bearer(node, token) as b:
        assert (await b.post("/applications", json={"name": "x"})).status_code == 403
        await join_group(node, priv.PROVIDERS, user["id"])
        assert (await b.post("/applications", json={"name": "x"})).status_code in (200, 201)
        assert (await node.admin.put("/users/rosa", json={"active": False})).status_code == 200
        assert (await b.get("/apis")).status_code == 401
        assert (await node.admin.delete("/users/rosa")).status_code == 204
        assert (await b.get("/apis")).status_code == 401
    async with node.portico.store.read() as tx:
        assert await tx.list(tokens.KIND) == []


async def test_only_the_user_or_a_user_administrator_manages_tokens(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "sara")
    await _provider(sqlite_node, "tom")
    async with client(sqlite_node, "sara") as c:
        issued = (await c.post("/users/sara/tokens", json={"name": "mine"})).json()
    async with client(sqlite_node, "tom") as c:
        for r in (await c.get("/users/sara/tokens"),
                  await c.delete(f"/users/sara/tokens/{issued['id']}")):
            assert r.status_code == 403 and priv.MANAGE_USERS in r.json()["errorDetails"]
        r = await c.post("/users/sara/tokens", json={"name": "theirs"})
        assert r.status_code == 403 and "their own user" in r.json()["errorDetails"]
        # a token id of someone else under one's own user is not found
        assert (await c.delete(f"/users/tom/tokens/{issued['id']}")).status_code == 404
    r = await sqlite_node.admin.get("/users/sara/tokens")
    assert r.status_code == 200 and len(r.json()["tokens"]) == 1
    # a user administrator lists and revokes other users' tokens but creates none for them (a token acts,
    # and is audited, as its user)
    r = await sqlite_node.admin.post("/users/sara/tokens", json={"name": "by-admin"})
    assert r.status_code == 403 and "their own user" in r.json()["errorDetails"]
    assert (await sqlite_node.admin.post("/users/nobody/tokens", json={"name": "x"})).status_code == 404
    assert (await sqlite_node.admin.delete(f"/users/sara/tokens/{issued['id']}")).status_code == 204
    assert (await sqlite_node.admin.get("/users/nobody/tokens")).status_code == 404


@pytest.mark.parametrize(("body", "named"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"name": "t", "expiresInDays": 0}, "expiresInDays"),
    ({"name": "t", "expiresInDays": 3651}, "expiresInDays"),
    ({"name": "t", "expiresInDays": "7"}, "expiresInDays"),
    ({"name": "t", "expiresInDays": True}, "expiresInDays"),
    ({"name": "t", "scopes": ["all"]}, "scopes"),
])
async def test_bad_token_requests_are_400(sqlite_node: Node, body: dict[str, Any], named: str) -> None:
    r = await sqlite_node.admin.post("/users/Administrator/tokens", json=body)
    assert r.status_code == 400 and named in r.json()["errorDetails"], r.text
    assert (await sqlite_node.admin.get("/users/Administrator/tokens")).json() == {"tokens": []}


async def test_duplicate_name_and_garbage_bearers(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.post("/users/Administrator/tokens", json={"name": "dup"})
    assert r.status_code == 201
    assert (await sqlite_node.admin.post("/users/Administrator/tokens", json={"name": "dup"})).status_code == 409
    for value in ("nonsense", "ptk_" + "A" * 43, r.json()["token"] + "x"):
        async with bearer(sqlite_node, value) as b:
            assert (await b.get("/apis")).status_code == 401
    async with bearer(sqlite_node, r.json()["token"]) as b:
        assert (await b.put("/configurations/settings", json={})).status_code == 200   # the Administrator's


async def test_a_token_changes_no_password(node: Node) -> None:
    """A token (for scripts) cannot take its account: no password change, so no successor token."""
    await create_user(node, "pia")
    async with client(node, "pia") as c:
        token = (await c.post("/users/pia/tokens", json={"name": "ci"})).json()["token"]
    async with bearer(node, token) as b:
        for body in ({"password": "Stolen-pass-9"}, {"password": "Stolen-pass-9", "oldPassword": "Str0ng-enough!"}):
            r = await b.put("/users/pia", json=body)
            assert r.status_code == 403 and "password credentials" in r.json()["errorDetails"], r.text
        r = await b.put("/users/pia", json={"firstName": "Pia"})   # other details: as the user
        assert r.status_code == 200 and r.json()["firstName"] == "Pia"
    admin_token = (await node.admin.post("/users/Administrator/tokens", json={"name": "adm"})).json()["token"]
    async with bearer(node, admin_token) as b:
        r = await b.put("/users/pia", json={"password": "Stolen-pass-9"})
        assert r.status_code == 403 and "password credentials" in r.json()["errorDetails"]
    async with client(node, "pia", "Stolen-pass-9") as c:
        assert (await c.get("/apis")).status_code == 401
    async with client(node, "pia") as c:
        assert (await c.get("/apis")).status_code == 200


async def test_changing_ones_own_password_needs_the_current_one(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "quin")
    async with client(sqlite_node, "quin") as c:
        r = await c.put("/users/quin", json={"password": "Next-pass-word-1"})
        assert r.status_code == 400 and "oldPassword" in r.json()["errorDetails"]
        r = await c.put("/users/quin", json={"password": "Next-pass-word-1", "oldPassword": "not-it"})
        assert r.status_code == 403 and "oldPassword" in r.json()["errorDetails"]
        r = await c.put("/users/quin", json={"password": "Next-pass-word-1", "oldPassword": 5})
        assert r.status_code == 400
        r = await c.put("/users/quin", json={"password": "Next-pass-word-1", "currentPassword": "Str0ng-enough!"})
        assert r.status_code == 200, r.text
    async with client(sqlite_node, "quin", "Next-pass-word-1") as c:
        assert (await c.get("/apis")).status_code == 200
    # a user administrator sets another user's password without it, but not their own
    r = await sqlite_node.admin.put("/users/quin", json={"password": "Third-pass-word-1"})
    assert r.status_code == 200, r.text
    r = await sqlite_node.admin.put("/users/Administrator", json={"password": "Admin-new-pass-1"})
    assert r.status_code == 400 and "oldPassword" in r.json()["errorDetails"]
    r = await sqlite_node.admin.put("/users/Administrator", json={"password": "Admin-new-pass-1",
                                                                   "oldPassword": "test-secret"})
    assert r.status_code == 200, r.text


async def test_token_logins_honour_the_lock_and_the_default_team_restriction(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "rey")
    async with client(sqlite_node, "rey") as c:
        token = (await c.post("/users/rey/tokens", json={"name": "t"})).json()["token"]
    r = await sqlite_node.admin.put("/configurations/accountLockSettings", json={
        "isEnabled": "true", "maximumLoginAttempts": "1", "timeInterval": "10", "timeIntervalUnit": "Minutes",
        "blockDuration": "1", "blockDurationUnit": "Hours"})
    assert r.status_code == 200, r.text
    async with client(sqlite_node, "rey", "wrong") as c:
        assert (await c.get("/apis")).status_code == 401   # locks the account
    async with bearer(sqlite_node, token) as b:
        r = await b.get("/apis")
        assert r.status_code == 401 and "locked" in r.json()["errorDetails"]
    r = await sqlite_node.admin.post("/is/lockedAccounts", json={"unLockAccounts": {"userName": ["rey"]}})
    assert r.status_code == 200
    async with bearer(sqlite_node, token) as b:
        assert (await b.get("/apis")).status_code == 200
        r = await sqlite_node.admin.put("/configurations/accountLockSettings",
                                        json={"restrictLoginForUsersInDefaultTeam": "true"})
        assert r.status_code == 200, r.text
        r = await b.get("/apis")
        assert r.status_code == 401 and "restrictLoginForUsersInDefaultTeam" in r.json()["errorDetails"]
