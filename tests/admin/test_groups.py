"""/groups: CRUD, membership by user id, predefined groups, privileges through teams, authorizeUser."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from portico.security import privileges as priv
from portico.security.principal import TEAM
from tests.admin.test_users import PASSWORD, client, create_user
from tests.gateway.test_runtime import add_action
from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def create_group(node: Node, name: str, user_ids: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    r = await node.admin.post("/groups", json={"name": name, "userIds": user_ids or [], **fields})
    assert r.status_code == 201, r.text
    group: dict[str, Any] = r.json()
    return group


async def test_create_read_update_delete(node: Node) -> None:
    alice = await create_user(node, "alice")
    bob = await create_user(node, "bob")
    group = await create_group(node, "QA", [alice["id"]], description="testers")
    uuid.UUID(group["id"])
    assert group["name"] == "QA" and group["userIds"] == [alice["id"]] and group["systemDefined"] is False
    for key in (group["id"], "QA"):
        r = await node.admin.get(f"/groups/{key}")
        assert r.status_code == 200 and r.json()["groups"][0]["id"] == group["id"]
    listed = {g["name"]: g for g in (await node.admin.get("/groups")).json()["groups"]}
    assert set(listed) >= {"QA", *priv.PREDEFINED_GROUPS}
    assert listed[priv.ADMINISTRATORS]["systemDefined"] is True
    assert "Administrator" in listed[priv.ADMINISTRATORS]["userIds"]

    r = await node.admin.put(f"/groups/{group['id']}", json={"name": "Quality", "userIds": [alice["id"], "bob"]})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Quality" and r.json()["userIds"] == [alice["id"], bob["id"]]
    assert r.json()["description"] == "testers"
    assert (await node.admin.get("/groups/QA")).status_code == 404

    assert (await node.admin.delete(f"/groups/{group['id']}")).status_code == 204
    assert (await node.admin.get(f"/groups/{group['id']}")).status_code == 404
    assert (await node.admin.delete(f"/groups/{group['id']}")).status_code == 404
    assert (await node.admin.get("/users/alice")).status_code == 200   # the users stay


@pytest.mark.parametrize(("body", "named"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": 7}, "name"),
    ({"name": "G", "userIds": "x"}, "userIds"),
    ({"name": "G", "userIds": [1]}, "userIds"),
    ({"name": "G", "userIds": ["no-such-user"]}, "no-such-user"),
    ({"name": "G", "description": 3}, "description"),
    ({"name": "G", "members": []}, "members"),
    ({"name": "G", "type": "LDAP"}, "type"),
    ({"name": priv.PROVIDERS}, "already exists"),
])
async def test_bad_group_bodies_are_400(sqlite_node: Node, body: dict[str, Any], named: str) -> None:
    before = (await sqlite_node.admin.get("/groups")).json()
    r = await sqlite_node.admin.post("/groups", json=body)
    assert r.status_code == 400, r.text
    assert named in r.json()["errorDetails"]
    assert (await sqlite_node.admin.get("/groups")).json() == before


async def test_unknown_member_on_update_leaves_the_group_alone(node: Node) -> None:
    alice = await create_user(node, "alice")
    group = await create_group(node, "Ops", [alice["id"]])
    r = await node.admin.put(f"/groups/{group['id']}", json={"userIds": [alice["id"], "ghost"], "name": "Ops2"})
    assert r.status_code == 400 and "ghost" in r.json()["errorDetails"]
    assert (await node.admin.get(f"/groups/{group['id']}")).json()["groups"][0] == group
    r = await node.admin.put(f"/groups/{group['id']}", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400


async def test_predefined_groups_cannot_be_deleted_or_renamed(node: Node) -> None:
    for name in priv.PREDEFINED_GROUPS:
        r = await node.admin.delete(f"/groups/{name}")
        assert r.status_code == 400 and "predefined" in r.json()["errorDetails"]
        r = await node.admin.put(f"/groups/{name}", json={"name": name + "-renamed"})
        assert r.status_code == 400 and "predefined" in r.json()["errorDetails"]
    # their members may change
    user = await create_user(node, "carol")
    r = await node.admin.put(f"/groups/{priv.PROVIDERS}", json={"userIds": [user["id"]]})
    assert r.status_code == 200 and r.json()["userIds"] == [user["id"]]


async def test_deleting_a_group_takes_its_privileges_not_its_users(node: Node) -> None:
    user = await create_user(node, "dora")
    group = await create_group(node, "Admins-of-users", [user["id"]])
    async with node.portico.store.transaction() as tx:
        await tx.insert(TEAM, "t-users", {"id": "t-users", "name": "t-users",
                                          "privilege": priv.to_bits([priv.MANAGE_USERS]),
                                          "groupIds": [group["id"]], "userIds": [],
                                          "teamApprovers": {"userIds": [], "groupIds": [group["id"]]}},
                        name="t-users")
    async with client(node, "dora") as c:
        r = await c.post("/users", json={"loginId": "eve", "password": PASSWORD})
        assert r.status_code == 201, r.text
        assert (await node.admin.delete(f"/groups/{group['id']}")).status_code == 204
        r = await c.post("/users", json={"loginId": "fred", "password": PASSWORD})
        assert r.status_code == 403 and priv.MANAGE_USERS in r.json()["errorDetails"]
    assert (await node.admin.get("/users/dora")).status_code == 200
    async with node.portico.store.read() as tx:
        team = await tx.get(TEAM, "t-users")
        assert team is not None
        assert team.body["groupIds"] == [] and team.body["teamApprovers"]["groupIds"] == []


async def test_authorize_user_sees_groups_and_teams_from_their_assets(node: Node, upstream: Upstream) -> None:
    """The gateway's authorizeUser policy: membership through /groups, by group name or id."""
    member = await create_user(node, "gail")
    await create_user(node, "hugo")
    group = await create_group(node, "Pet-Keepers", [member["id"]])
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "inboundAuthTransport", "IAM", [])
    await add_action(node, api, "authorizeUser", "IAM", [{"templateKey": "groups", "values": ["Pet-Keepers"]}])
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo", auth=("gail", PASSWORD))).status_code == 200
    r = await node.gw.get("/Echo/1.0/echo", auth=("hugo", PASSWORD))
    assert r.status_code == 403
    r = await node.admin.put(f"/groups/{group['id']}", json={"userIds": []})
    assert r.status_code == 200
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo", auth=("gail", PASSWORD))).status_code == 403
