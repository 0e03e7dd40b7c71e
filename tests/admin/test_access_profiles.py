"""``/accessProfiles`` (teams): CRUD in the reference's shape, every validation, team administrators
who may change only their team's members, and privileges that reach users through a team."""

from __future__ import annotations

from typing import Any

import pytest

from portico.security import privileges as priv
from tests.admin.teams_support import add_user, client, make_team
from tests.support.node import Node


async def test_crud_and_shapes(node: Node) -> None:
    await add_user(node, "alice")
    await add_user(node, "lead")
    r = await node.admin.post("/accessProfiles", json={
        "name": "DevTeam", "description": "developers", "privilege": "1011",
        "userIds": ["alice"], "groupIds": [priv.PROVIDERS],
        "teamAdmin": {"userIds": ["lead"], "groupIds": []},
        "teamApprovers": {"userIds": ["lead"]}, "includeTeamAdminsAsApprovers": True,
    })
    assert r.status_code == 201, r.text
    team = r.json()
    assert team["privilege"] == "1011" + "0" * 24
    assert team["privileges"] == [priv.MANAGE_APIS, priv.MANAGE_APPLICATIONS, priv.MANAGE_ALIASES]
    assert team["userIds"] == ["alice"] and team["groupIds"] == [priv.PROVIDERS]
    assert team["teamAdmin"] == {"userIds": ["lead"], "groupIds": []}
    assert team["teamApprovers"] == {"userIds": ["lead"], "groupIds": []}
    assert team["includeTeamAdminsAsApprovers"] is True and team["systemDefined"] is False

    r = await node.admin.get("/accessProfiles")
    listed = {t["id"]: t for t in r.json()["accessProfiles"]}
    assert team["id"] in listed
    for name in priv.PREDEFINED_TEAMS:
        assert listed[name]["systemDefined"] is True
    assert listed[priv.ADMINISTRATORS]["privilege"] == "1" * 28

    # A readable list of names is accepted; fields left out are kept.
    r = await node.admin.put(f"/accessProfiles/{team['id']}", json={
        "name": "DevTeam2", "privileges": ["manage apis", priv.CHANGE_OWNERSHIP]})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["name"] == "DevTeam2" and updated["description"] == "developers"
    assert updated["privileges"] == [priv.MANAGE_APIS, priv.CHANGE_OWNERSHIP]
    assert updated["userIds"] == ["alice"]
    assert (await node.admin.get(f"/accessProfiles/{team['id']}")).json() == updated

    # A member deleted meanwhile does not stop the team from being sent back as read.
    async with node.portico.store.transaction() as tx:
        await tx.delete("user", "lead")
    r = await node.admin.put(f"/accessProfiles/{team['id']}", json=updated)
    assert r.status_code == 200, r.text
    r = await node.admin.put(f"/accessProfiles/{team['id']}", json={"teamApprovers": {"userIds": ["ghost"]}})
    assert r.status_code == 400 and "ghost" in r.json()["errorDetails"]

    # The old name is free again, the new one taken.
    assert (await node.admin.post("/accessProfiles", json={"name": "devteam"})).status_code == 201
    assert (await node.admin.post("/accessProfiles", json={"name": "DEVTEAM2"})).status_code == 409

    assert (await node.admin.delete(f"/accessProfiles/{team['id']}")).status_code == 204
    r = await node.admin.get(f"/accessProfiles/{team['id']}")
    assert r.status_code == 404
    assert "does not exist" in r.json()["errorDetails"]


@pytest.mark.parametrize("body, status, fragment", [
    ({}, 400, "'name' is required"),
    ({"name": "  "}, 400, "'name' is required"),
    ({"name": 5}, 400, "'name' is required"),
    ({"name": "T", "privilege": "10x"}, 400, "'0'/'1'"),
    ({"name": "T", "privilege": "1" * 29}, 400, "at most 28"),
    ({"name": "T", "privileges": ["Manage everything"]}, 400, "unknown functional privilege"),
    ({"name": "T", "privilege": "1", "privileges": [priv.MANAGE_ALIASES]}, 400, "different"),
    ({"name": "T", "privilege": 7}, 400, "bit string"),
    ({"name": "T", "userIds": ["ghost"]}, 400, "unknown user 'ghost'"),
    ({"name": "T", "groupIds": ["no-such-group"]}, 400, "unknown group 'no-such-group'"),
    ({"name": "T", "groupIds": "Administrators"}, 400, "'groupIds' must be a list"),
    ({"name": "T", "teamAdmin": {"userIds": ["ghost"]}}, 400, "teamAdmin.userIds"),
    ({"name": "T", "teamApprovers": {"groupIds": ["nope"]}}, 400, "teamApprovers.groupIds"),
    ({"name": "T", "teamAdmin": ["Administrator"]}, 400, "'teamAdmin' must be an object"),
    ({"name": "T", "includeTeamAdminsAsApprovers": "maybe"}, 400, "true or false"),
    ({"name": "T", "description": ["x"]}, 400, "'description'"),
    ({"name": "administrators"}, 409, "already exists"),
    ({"name": "Default"}, 409, "already exists"),
])
async def test_bad_input(sqlite_node: Node, body: dict[str, Any], status: int, fragment: str) -> None:
    before = (await sqlite_node.admin.get("/accessProfiles")).json()
    r = await sqlite_node.admin.post("/accessProfiles", json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["errorDetails"]
    assert (await sqlite_node.admin.get("/accessProfiles")).json() == before


async def test_predefined_teams_are_protected(sqlite_node: Node) -> None:
    admin = sqlite_node.admin
    for name in priv.PREDEFINED_TEAMS:
        r = await admin.delete(f"/accessProfiles/{name}")
        assert r.status_code == 400 and "predefined" in r.json()["errorDetails"]
        r = await admin.put(f"/accessProfiles/{name}", json={"name": name + "-x"})
        assert r.status_code == 400 and "cannot be renamed" in r.json()["errorDetails"]
    r = await admin.put(f"/accessProfiles/{priv.ADMINISTRATORS}", json={"privilege": "1"})
    assert r.status_code == 400 and "cannot be changed" in r.json()["errorDetails"]
    # Members and the description of a predefined team can change; the providers' privileges too.
    await add_user(sqlite_node, "bob")
    r = await admin.put(f"/accessProfiles/{priv.PROVIDERS}", json={"userIds": ["bob"], "description": "d"})
    assert r.status_code == 200, r.text
    assert r.json()["userIds"] == ["bob"]
    for path in ("/accessProfiles/nope", "/accessProfiles/nope"):
        assert (await admin.put(path, json={"name": "x"})).status_code == 404
        assert (await admin.delete(path)).status_code == 404


async def test_privileges_reach_users_through_the_team(sqlite_node: Node) -> None:
    await add_user(sqlite_node, "carol")
    async with client(sqlite_node, "carol") as carol:
        r = await carol.post("/applications", json={"name": "app"})
        assert r.status_code == 403 and priv.MANAGE_APPLICATIONS in r.json()["errorDetails"]
        team = await make_team(sqlite_node, "AppTeam", [priv.MANAGE_APPLICATIONS], users=["carol"])
        assert (await carol.post("/applications", json={"name": "app"})).status_code == 200
        # Through a group member of the team as well.
        await sqlite_node.admin.put(f"/accessProfiles/{team['id']}", json={"userIds": []})
        assert (await carol.post("/applications", json={"name": "app2"})).status_code == 403
        await add_user(sqlite_node, "dave", groups=["devs"])
        await sqlite_node.admin.put(f"/accessProfiles/{team['id']}", json={"groupIds": ["devs"]})
    async with client(sqlite_node, "dave") as dave:
        assert (await dave.post("/applications", json={"name": "app3"})).status_code == 200
        # Reading teams is open to every signed-in user; writing needs Manage user administration.
        assert (await dave.get("/accessProfiles")).status_code == 200
        r = await dave.post("/accessProfiles", json={"name": "mine"})
        assert r.status_code == 403 and priv.MANAGE_USERS in r.json()["errorDetails"]
        assert (await dave.delete(f"/accessProfiles/{team['id']}")).status_code == 403


async def test_team_administrators_change_only_members(sqlite_node: Node) -> None:
    for login in ("lead", "member", "newbie", "outsider"):
        await add_user(sqlite_node, login)
    await add_user(sqlite_node, "deputy", groups=["leads"])
    team = await make_team(sqlite_node, "Squad", [priv.MANAGE_APIS], users=["member"],
                           teamAdmin={"userIds": ["lead"], "groupIds": ["leads"]})
    other = await make_team(sqlite_node, "Other", [priv.MANAGE_APIS])
    path = f"/accessProfiles/{team['id']}"
    async with client(sqlite_node, "lead") as lead, client(sqlite_node, "deputy") as deputy, \
            client(sqlite_node, "outsider") as outsider:
        r = await lead.put(path, json={"userIds": ["member", "newbie"]})
        assert r.status_code == 200, r.text
        assert r.json()["userIds"] == ["member", "newbie"]
        # A group named in teamAdmin makes its users team administrators.
        r = await deputy.put(path, json={"userIds": ["newbie"], "groupIds": ["leads"]})
        assert r.status_code == 200, r.text
        # The whole body sent back unchanged but for the members is fine.
        body = {**r.json(), "userIds": ["member"]}
        assert (await lead.put(path, json=body)).status_code == 200
        for change in ({"description": "ours"}, {"privileges": [priv.MANAGE_APIS, priv.MANAGE_USERS]},
                       {"name": "Renamed"}, {"teamAdmin": {"userIds": ["member"]}}):
            r = await lead.put(path, json=change)
            assert r.status_code == 403, (change, r.text)
            assert "only the members" in r.json()["errorDetails"]
        r = await lead.put(f"/accessProfiles/{other['id']}", json={"userIds": ["lead"]})
        assert r.status_code == 403 and "not an administrator of team 'Other'" in r.json()["errorDetails"]
        assert (await outsider.put(path, json={"userIds": ["outsider"]})).status_code == 403
    current = (await sqlite_node.admin.get(path)).json()
    assert current["userIds"] == ["member"] and current["description"] == "" and current["name"] == "Squad"
