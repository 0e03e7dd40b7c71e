"""Logins in the audit log: successful /users/authenticate, failed credentials of every kind."""

from __future__ import annotations

from typing import Any

import httpx

from tests.admin.test_audit import audit_records
from tests.admin.test_users import client, create_user
from tests.security.test_lockout import LOCK
from tests.security.test_tokens import bearer
from tests.support.node import Node


def _logins(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["action"], r["object"]) for r in records if r["objectType"] == "Login"]


async def test_logins_and_failed_logins_are_audited(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "xena")
    await sqlite_node.admin.put("/configurations/accountLockSettings", json={**LOCK, "maximumLoginAttempts": "2"})
    async with client(sqlite_node, "xena") as c:
        assert (await c.post("/users/authenticate")).status_code == 200
        assert (await c.get("/apis")).status_code == 200   # an ordinary call is not a login
        token = (await c.post("/users/xena/tokens", json={"name": "t"})).json()["token"]
    async with bearer(sqlite_node, token) as b:
        assert (await b.post("/users/authenticate")).status_code == 200   # token use is not a login
    async with bearer(sqlite_node, "ptk_" + "B" * 43) as b:
        assert (await b.get("/apis")).status_code == 401
    async with client(sqlite_node, "ghost", "whatever") as c:
        assert (await c.get("/apis")).status_code == 401
    async with client(sqlite_node, "xena", "wrong") as c:
        assert (await c.get("/apis")).status_code == 401
        assert (await c.get("/apis")).status_code == 401   # now locked
    async with client(sqlite_node, "xena") as c:
        assert (await c.get("/apis")).status_code == 401   # locked, right password
    async with httpx.AsyncClient(base_url=f"{sqlite_node.base}/rest/apigateway") as anonymous:
        assert (await anonymous.get("/apis")).status_code == 401   # no credentials at all: not a failed login

    records = await audit_records(sqlite_node, sortByField="creationDate", sortOrder="ASC")
    logins = _logins(records)
    assert logins.count(("Login", "xena")) == 1
    failed = [obj for action, obj in logins if action == "Failed login"]
    assert failed.count("xena") == 3 and "ghost" in failed and "" in failed
    assert len(failed) == 5
    messages = {r["message"] for r in records if r["action"] == "Failed login"}
    assert any("locked" in m for m in messages) and any("token" in m for m in messages)
