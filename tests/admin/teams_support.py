"""Helpers for the team tests: users put straight into the store, everything else through the API."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import httpx

from portico.security.passwords import hash_password
from portico.security.principal import GROUP, USER
from tests.support.node import Node

PASSWORD = "Team-pass-1"


@lru_cache(maxsize=1)
def _hash() -> str:
    return hash_password(PASSWORD)


async def add_user(node: Node, login: str, groups: Iterable[str] = ()) -> None:
    async with node.portico.store.transaction() as tx:
        await tx.insert(USER, login, {"id": login, "loginId": login, "passwordHash": _hash(), "active": True},
                        name=login)
        for group in groups:
            row = await tx.get(GROUP, group)
            if row is None:
                row = await tx.insert(GROUP, group, {"id": group, "name": group, "userIds": []}, name=group)
            await tx.update(GROUP, group, {**row.body, "userIds": [*row.body.get("userIds", []), login]},
                            row.revision, name=group)


def client(node: Node, login: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=(login, PASSWORD), timeout=30)


async def make_team(node: Node, name: str, privileges: list[str], users: Iterable[str] = (),
                    groups: Iterable[str] = (), **extra: Any) -> dict[str, Any]:
    r = await node.admin.post("/accessProfiles", json={"name": name, "privileges": privileges,
                                                       "userIds": list(users), "groupIds": list(groups), **extra})
    assert r.status_code == 201, r.text
    team: dict[str, Any] = r.json()
    return team


async def set_team_work(node: Node, on: bool) -> None:
    r = await node.admin.put("/configurations/settings",
                             json={"extendedKeys": {"enableTeamWork": "true" if on else "false"}})
    assert r.status_code == 200, r.text


def spec(title: str, version: str = "1.0") -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": title, "version": version},
            "servers": [{"url": "http://127.0.0.1:9/svc"}],
            "paths": {"/items": {"get": {"responses": {"200": {"description": "ok"}}}}}}


async def make_api(c: httpx.AsyncClient, title: str, teams: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "openapi", "apiDefinition": spec(title), **fields}
    if teams is not None:
        body["teams"] = teams
    r = await c.post("/apis", json=body)
    assert r.status_code == 200, r.text
    api: dict[str, Any] = r.json()["apiResponse"]["api"]
    return api


async def make_app(c: httpx.AsyncClient, name: str, teams: list[str] | None = None,
                   api_ids: Iterable[str] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "apiIDs": list(api_ids)}
    if teams is not None:
        body["teams"] = teams
    r = await c.post("/applications", json=body)
    assert r.status_code == 200, r.text
    app: dict[str, Any] = r.json()
    return app


async def make_package(c: httpx.AsyncClient, name: str, teams: list[str] | None = None,
                       **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **fields}
    if teams is not None:
        body["teams"] = teams
    r = await c.post("/packages", json=body)
    assert r.status_code == 201, r.text
    package: dict[str, Any] = r.json()["packageResponse"]["package"]
    return package


async def make_plan(c: httpx.AsyncClient, name: str, teams: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if teams is not None:
        body["teams"] = teams
    r = await c.post("/plans", json=body)
    assert r.status_code == 201, r.text
    plan: dict[str, Any] = r.json()["planResponse"]
    return plan


async def ids(c: httpx.AsyncClient, path: str, key: str, inner: str | None = None) -> set[str]:
    r = await c.get(path)
    assert r.status_code == 200, r.text
    items = r.json()[key]
    return {(i[inner] if inner else i)["id"] for i in items}
