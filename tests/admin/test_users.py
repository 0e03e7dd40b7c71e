"""/users, /users/authenticate, /authenticate: CRUD, bad input, predefined users, self-service."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from portico.security import privileges as priv
from portico.security.principal import GROUP, TEAM, USER
from tests.support.node import ADMIN, Node

PASSWORD = "Str0ng-enough!"


def client(node: Node, login: str, password: str = PASSWORD) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway", auth=(login, password), timeout=30)


async def create_user(node: Node, login: str, password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
    r = await node.admin.post("/users", json={"loginId": login, "password": password, **fields})
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()
    return user


async def join_group(node: Node, group: str, user_id: str) -> None:
    r = await node.admin.get(f"/groups/{group}")
    assert r.status_code == 200, r.text
    members = r.json()["groups"][0]["userIds"]
    r = await node.admin.put(f"/groups/{group}", json={"userIds": [*members, user_id]})
    assert r.status_code == 200, r.text


async def test_create_read_update_delete(node: Node) -> None:
    created = await create_user(node, "alice", firstName="Alice", lastName="Liddell",
                                emailAddresses=["alice@example.org"], language="en")
    uuid.UUID(created["id"])
    assert created["loginId"] == "alice" and created["firstName"] == "Alice"
    assert created["password"] == "*" * 32 and created["type"] == "local" and created["active"] is True
    assert created["systemDefined"] is False
    assert "passwordHash" not in created and PASSWORD not in str(created)

    for key in (created["id"], "alice"):
        r = await node.admin.get(f"/users/{key}")
        assert r.status_code == 200, r.text
        assert r.json()["users"][0]["id"] == created["id"]
    listed = (await node.admin.get("/users")).json()["users"]
    assert {u["loginId"] for u in listed} >= {"Administrator", "alice"}
    assert all(u["password"] == "*" * 32 and "passwordHash" not in u for u in listed)
    admin = next(u for u in listed if u["loginId"] == "Administrator")
    assert admin["systemDefined"] is True

    r = await node.admin.put("/users/alice", json={"lastName": "Pleasance", "password": "*" * 32})
    assert r.status_code == 200, r.text
    assert r.json()["lastName"] == "Pleasance" and r.json()["firstName"] == "Alice"
    async with client(node, "alice") as c:   # the mask sent back left the password alone
        assert (await c.post("/users/authenticate")).status_code == 200

    r = await node.admin.delete(f"/users/{created['id']}")
    assert r.status_code == 204
    assert (await node.admin.get("/users/alice")).status_code == 404
    assert (await node.admin.delete("/users/alice")).status_code == 404
    async with client(node, "alice") as c:
        assert (await c.get("/apis")).status_code == 401


async def test_duplicate_login_is_409(node: Node) -> None:
    await create_user(node, "bob")
    r = await node.admin.post("/users", json={"loginId": "bob", "password": PASSWORD})
    assert r.status_code == 409 and "bob" in r.json()["errorDetails"]
    r = await node.admin.post("/users", json={"loginId": "Administrator", "password": PASSWORD})
    assert r.status_code == 409
    other = await create_user(node, "carol")
    r = await node.admin.put(f"/users/{other['id']}", json={"loginId": "bob"})
    assert r.status_code == 409
    assert (await node.admin.get("/users/carol")).status_code == 200


async def test_login_id_can_change_and_frees_the_old_one(sqlite_node: Node) -> None:
    user = await create_user(sqlite_node, "dave")
    r = await sqlite_node.admin.put(f"/users/{user['id']}", json={"loginId": "david"})
    assert r.status_code == 200 and r.json()["loginId"] == "david"
    async with client(sqlite_node, "david") as c:
        assert (await c.post("/authenticate")).status_code == 200
    await create_user(sqlite_node, "dave")


@pytest.mark.parametrize(("body", "named"), [
    ({"password": PASSWORD}, "loginId"),
    ({"loginId": "", "password": PASSWORD}, "loginId"),
    ({"loginId": "a:b", "password": PASSWORD}, "loginId"),
    ({"loginId": 5, "password": PASSWORD}, "loginId"),
    ({"loginId": "erin"}, "password"),
    ({"loginId": "erin", "password": 12345678}, "password"),
    ({"loginId": "erin", "password": PASSWORD, "active": "yes"}, "active"),
    ({"loginId": "erin", "password": PASSWORD, "emailAddresses": "erin@example.org"}, "emailAddresses"),
    ({"loginId": "erin", "password": PASSWORD, "firstName": ["Erin"]}, "firstName"),
    ({"loginId": "erin", "password": PASSWORD, "type": "LDAP"}, "type"),
    ({"loginId": "erin", "password": PASSWORD, "groups": ["x"]}, "groups"),
])
async def test_bad_user_bodies_are_400(sqlite_node: Node, body: dict[str, Any], named: str) -> None:
    r = await sqlite_node.admin.post("/users", json=body)
    assert r.status_code == 400, r.text
    assert named in r.json()["errorDetails"]
    assert [u["loginId"] for u in (await sqlite_node.admin.get("/users")).json()["users"]] == ["Administrator"]


async def test_malformed_json_and_non_objects_are_400(sqlite_node: Node) -> None:
    for content in (b"{not json", b"[1, 2]", b""):
        r = await sqlite_node.admin.post("/users", content=content, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["errorDetails"], r.text
    user = await create_user(sqlite_node, "frank")
    r = await sqlite_node.admin.put(f"/users/{user['id']}", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert (await sqlite_node.admin.put("/users/nobody-here", json={"firstName": "x"})).status_code == 404


async def test_predefined_user_cannot_be_deleted_or_deactivated(node: Node) -> None:
    r = await node.admin.delete("/users/Administrator")
    assert r.status_code == 400 and "predefined" in r.json()["errorDetails"]
    r = await node.admin.put("/users/Administrator", json={"active": False})
    assert r.status_code == 400 and "predefined" in r.json()["errorDetails"]
    assert (await node.admin.get("/users/Administrator")).status_code == 200


async def test_deleting_a_user_takes_it_out_of_groups_and_teams(node: Node) -> None:
    user = await create_user(node, "gina")
    await join_group(node, priv.PROVIDERS, user["id"])
    async with node.portico.store.transaction() as tx:
        await tx.insert(TEAM, "t-gina", {"id": "t-gina", "name": "t-gina", "privilege": priv.to_bits([]),
                                         "groupIds": [], "userIds": [user["id"], "Administrator"],
                                         "teamAdmin": {"userIds": [user["id"]], "groupIds": []}}, name="t-gina")
    assert (await node.admin.delete("/users/gina")).status_code == 204
    group = (await node.admin.get(f"/groups/{priv.PROVIDERS}")).json()["groups"][0]
    assert user["id"] not in group["userIds"]
    async with node.portico.store.read() as tx:
        team = await tx.get(TEAM, "t-gina")
        assert team is not None
        assert team.body["userIds"] == ["Administrator"] and team.body["teamAdmin"]["userIds"] == []
        assert await tx.get(USER, user["id"]) is None


async def test_user_without_privileges(node: Node) -> None:
    """Anyone signed in may list users; creating, changing others and deleting need the privilege."""
    me = await create_user(node, "henry")
    other = await create_user(node, "irene")
    async with client(node, "henry") as c:
        assert (await c.get("/users")).status_code == 200
        assert (await c.get(f"/users/{other['id']}")).status_code == 200
        for r in (await c.post("/users", json={"loginId": "x", "password": PASSWORD}),
                  await c.put(f"/users/{other['id']}", json={"firstName": "I"}),
                  await c.delete(f"/users/{other['id']}"),
                  await c.post("/groups", json={"name": "g"}),
                  await c.get("/configurations/passwordRestrictions")):
            assert r.status_code == 403, r.text
            assert priv.MANAGE_USERS in r.json()["errorDetails"]
        # their own account: details and password yes, login id and activation no
        r = await c.put(f"/users/{me['id']}", json={"firstName": "Hank", "password": "An0ther-pass!",
                                                    "oldPassword": PASSWORD})
        assert r.status_code == 200, r.text
    async with client(node, "henry", "An0ther-pass!") as c:
        r = await c.put("/users/henry", json={"active": False})
        assert r.status_code == 403 and priv.MANAGE_USERS in r.json()["errorDetails"]
        r = await c.put("/users/henry", json={"loginId": "hank"})
        assert r.status_code == 403
    async with client(node, "henry") as c:
        assert (await c.get("/users")).status_code == 401


async def test_privileges_through_a_predefined_group(node: Node) -> None:
    user = await create_user(node, "judy")
    async with client(node, "judy") as c:
        assert (await c.post("/users", json={"loginId": "kim", "password": PASSWORD})).status_code == 403
        await join_group(node, priv.GATEWAY_ADMINISTRATORS, user["id"])
        assert (await c.post("/users", json={"loginId": "kim", "password": PASSWORD})).status_code == 201


async def test_authenticate(node: Node) -> None:
    user = await create_user(node, "liam", firstName="Liam")
    for path in ("/users/authenticate", "/authenticate"):
        async with client(node, "liam") as c:
            r = await c.post(path)
            assert r.status_code == 200, r.text
            assert r.json()["id"] == user["id"] and r.json()["password"] == "*" * 32
            r = await c.post(path, json={"loginId": "liam"})
            assert r.status_code == 200
            r = await c.post(path, json={"loginId": "someone-else"})
            assert r.status_code == 400
            r = await c.post(path, content=b"{oops")
            assert r.status_code == 400
        async with client(node, "liam", "wrong") as c:
            r = await c.post(path)
            assert r.status_code == 401 and "invalid user name or password" in r.json()["errorDetails"]
    async with httpx.AsyncClient(base_url=f"{node.base}/rest/apigateway") as anonymous:
        assert (await anonymous.post("/users/authenticate")).status_code == 401


async def test_inactive_user_cannot_sign_in(sqlite_node: Node) -> None:
    await create_user(sqlite_node, "mona")
    r = await sqlite_node.admin.put("/users/mona", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    async with client(sqlite_node, "mona") as c:
        assert (await c.post("/authenticate")).status_code == 401


async def test_group_membership_in_store_uses_user_ids(sqlite_node: Node) -> None:
    """Groups list members by user id, whatever login id the user has now."""
    user = await create_user(sqlite_node, "nina")
    await join_group(sqlite_node, priv.PROVIDERS, "nina")   # a login id is accepted and stored as the id
    async with sqlite_node.portico.store.read() as tx:
        group = await tx.get(GROUP, priv.PROVIDERS)
        assert group is not None and group.body["userIds"] == [user["id"]]


async def test_administrator_login_id_is_held(node: Node) -> None:
    """The seeded Administrator holds its login id like any created user, under concurrency too:
    no second account, created or renamed, ever gets it. Login ids compare exactly (case
    included), so 'administrator' is another login id and signs in as that other user."""
    others = [await create_user(node, f"renamer{i}") for i in range(4)]
    results = await asyncio.gather(
        *(node.admin.post("/users", json={"loginId": "Administrator", "password": PASSWORD}) for _ in range(6)),
        *(node.admin.put(f"/users/{u['id']}", json={"loginId": "Administrator"}) for u in others))
    for r in results:
        assert r.status_code == 409, r.text
        assert "Administrator" in r.json()["errorDetails"]
    listed = (await node.admin.get("/users")).json()["users"]
    assert [u["id"] for u in listed if u["loginId"] == "Administrator"] == ["Administrator"]
    assert sorted(u["loginId"] for u in listed if u["loginId"].startswith("renamer")) == \
        [f"renamer{i}" for i in range(4)]

    lower = await create_user(node, "administrator")
    async with client(node, "administrator") as c:
        r = await c.post("/users/authenticate")
        assert r.status_code == 200 and r.json()["id"] == lower["id"]
    async with client(node, "Administrator", "test-secret") as c:
        r = await c.post("/users/authenticate")
        assert r.status_code == 200 and r.json()["id"] == "Administrator"


async def test_administrator_renamed_keeps_its_old_login_id(node: Node) -> None:
    """Renamed, the Administrator still keeps 'Administrator' from others: that is also its id,
    which admin.auth.find_user matches too (it signs in as 'root' only, though). Renamed back, it
    frees the other login id."""
    other = await create_user(node, "dave")
    r = await node.admin.put("/users/Administrator", json={"loginId": "root"})
    assert r.status_code == 200 and r.json()["loginId"] == "root", r.text
    async with client(node, "root", ADMIN[1]) as root:
        r = await root.post("/users", json={"loginId": "Administrator", "password": PASSWORD})
        assert r.status_code == 409 and "Administrator" in r.json()["errorDetails"]
        r = await root.put(f"/users/{other['id']}", json={"loginId": "Administrator"})
        assert r.status_code == 409 and "Administrator" in r.json()["errorDetails"]
        r = await root.post("/users", json={"loginId": "root", "password": PASSWORD})
        assert r.status_code == 409 and "root" in r.json()["errorDetails"]

        r = await root.put("/users/Administrator", json={"loginId": "Administrator"})
        assert r.status_code == 200, r.text
    await create_user(node, "root")   # the Administrator's former login id is free again
    listed = (await node.admin.get("/users")).json()["users"]
    assert [u["id"] for u in listed if u["loginId"] == "Administrator"] == ["Administrator"]


async def test_sign_in_is_by_login_id_only(node: Node) -> None:
    """As in webMethods API Gateway, a user signs in with the login id, never with the user id (a
    UUID, or 'Administrator' for the seeded Administrator, whatever its login id is now)."""
    user = await create_user(node, "oscar")
    async with client(node, user["id"]) as c:
        r = await c.post("/users/authenticate")
        assert r.status_code == 401 and "invalid user name or password" in r.json()["errorDetails"]
        assert "set-cookie" not in r.headers
    async with client(node, "oscar") as c:
        assert (await c.post("/users/authenticate")).status_code == 200

    r = await node.admin.put("/users/Administrator", json={"loginId": "root"})
    assert r.status_code == 200, r.text
    for path in ("/users/authenticate", "/apis"):
        r = await (node.admin.post(path) if path.endswith("authenticate") else node.admin.get(path))
        assert r.status_code == 401 and "invalid user name or password" in r.json()["errorDetails"], r.text
    async with client(node, "root", ADMIN[1]) as root:
        r = await root.post("/users/authenticate")
        assert r.status_code == 200 and r.json()["id"] == "Administrator" and r.json()["loginId"] == "root"
        assert (await root.get("/apis")).status_code == 200
