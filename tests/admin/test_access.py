"""The privilege matrix: every operation of the management API's own OpenAPI document, called by a
user who lacks its functional privilege (403 naming it) and by one who holds it (let through)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from portico.admin import access
from portico.security import privileges as priv
from portico.security.passwords import hash_password
from portico.security.principal import GROUP, TEAM, USER
from tests.support.node import Node

PASSWORD = "Matrix-pass-1"
_PARAM = re.compile(r"\{[^}]+\}")


def _login(privilege: str | None) -> str:
    return "nobody" if privilege is None else "holds-" + re.sub(r"[^a-z]+", "-", privilege.lower()).strip("-")


async def _seed_users(node: Node) -> None:
    """One user per functional privilege, each in a team holding only that privilege, and one with none."""
    stored = hash_password(PASSWORD)
    async with node.portico.store.transaction() as tx:
        for privilege in (None, *priv.PRIVILEGES):
            login = _login(privilege)
            await tx.insert(USER, login, {"id": login, "loginId": login, "passwordHash": stored, "active": True},
                            name=login)
            if privilege is not None:
                team = f"team-{login}"
                await tx.insert(TEAM, team, {"id": team, "name": team, "privilege": priv.to_bits([privilege]),
                                             "groupIds": [], "userIds": [login]}, name=team)


def _client(node: Node, login: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=(login, PASSWORD), timeout=30)


async def _operations(node: Node) -> list[tuple[str, str, Any]]:
    doc = (await node.admin.get("/openapi.json")).json()
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ops.append((method.upper(), path, op))
    return ops


async def _call(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    url = _PARAM.sub("no-such-id", path)
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, url, json=body)


async def test_every_operation_declares_its_privilege(sqlite_node: Node) -> None:
    undeclared = [f"{m} {p}" for m, p, op in await _operations(sqlite_node)
                  if op.get("security") != [] and op.get("x-portico-privileges") is None]
    assert not undeclared, f"routes without a declared functional privilege: {undeclared}"
    for _, _, op in await _operations(sqlite_node):
        for name in op.get("x-portico-privileges") or []:
            assert name in priv.ALL


async def test_privilege_matrix(sqlite_node: Node) -> None:
    await _seed_users(sqlite_node)
    clients: dict[str, httpx.AsyncClient] = {}

    def client(login: str) -> httpx.AsyncClient:
        if login not in clients:
            clients[login] = _client(sqlite_node, login)
        return clients[login]

    checked = 0
    try:
        for method, path, op in await _operations(sqlite_node):
            needed = op.get("x-portico-privileges")
            if op.get("security") == []:
                r = await _call(httpx.AsyncClient(base_url=f"{sqlite_node.base}/rest/apigateway"), method, path)
                assert r.status_code not in (401, 403), (method, path, r.text)
                continue
            assert needed is not None
            r = await _call(client(_login(None)), method, path)
            if needed:
                assert r.status_code == 403, (method, path, r.status_code, r.text)
                assert any(n in r.json()["errorDetails"] for n in needed), r.text
            else:
                assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)
            passed = 0
            for name in needed:
                r = await _call(client(_login(name)), method, path)
                if (method, path) in access.BY_KIND and r.status_code == 403:
                    # a coarse gate: the handler named the one privilege this object needs, another listed one
                    others = [n for n in needed if n != name]
                    assert any(n in r.json()["errorDetails"] for n in others), (method, path, name, r.text)
                    continue
                assert r.status_code not in (401, 403), (method, path, name, r.status_code, r.text)
                passed += 1
            assert passed or not needed, (method, path, "no holder of a listed privilege got through")
            checked += 1
    finally:
        for c in clients.values():
            await c.aclose()
    assert checked > 50


async def test_wrong_password_and_unknown_user_are_401(sqlite_node: Node) -> None:
    await _seed_users(sqlite_node)
    for auth in (("nobody", "wrong"), ("ghost", PASSWORD)):
        async with httpx.AsyncClient(base_url=f"{sqlite_node.base}/rest/apigateway", auth=auth) as c:
            r = await c.get("/apis")
            assert r.status_code == 401
            assert "errorDetails" in r.json()


async def test_privileges_come_from_teams_of_the_users_groups(sqlite_node: Node) -> None:
    """A provider (member of API-Gateway-Providers) may create applications but not change settings;
    removing the user from the group takes the privilege away."""
    await _seed_users(sqlite_node)
    store = sqlite_node.portico.store
    async with store.transaction() as tx:
        row = await tx.get(GROUP, priv.PROVIDERS)
        assert row is not None
        await tx.update(GROUP, row.id, {**row.body, "userIds": ["nobody"]}, row.revision, name=row.body["name"])
    async with _client(sqlite_node, "nobody") as c:
        r = await c.post("/applications", json={"name": "by-provider"})
        assert r.status_code in (200, 201), r.text
        r = await c.put("/configurations/settings", json={})
        assert r.status_code == 403
        assert priv.MANAGE_GENERAL_CONFIG in r.json()["errorDetails"]
    async with store.transaction() as tx:
        row = await tx.get(GROUP, priv.PROVIDERS)
        assert row is not None
        await tx.update(GROUP, row.id, {**row.body, "userIds": []}, row.revision, name=row.body["name"])
    async with _client(sqlite_node, "nobody") as c:
        r = await c.post("/applications", json={"name": "by-nobody"})
        assert r.status_code == 403
        assert priv.MANAGE_APPLICATIONS in r.json()["errorDetails"]
