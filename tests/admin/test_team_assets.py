"""``POST /assets/team`` and ``POST /assets/owner``: one asset and in bulk, the guide's validation,
who may do it, and that only visible assets can be chosen."""

from __future__ import annotations

from typing import Any

import pytest

from portico.security import privileges as priv
from tests.admin.teams_support import (
    add_user,
    client,
    make_api,
    make_app,
    make_package,
    make_plan,
    make_team,
    set_team_work,
)
from tests.support.node import Node


async def _api_teams(node: Node, api_id: str) -> list[str]:
    teams: list[str] = (await node.admin.get(f"/apis/{api_id}")).json()["apiResponse"]["api"]["teams"]
    return teams


async def test_all_apis_of_a_team_move_to_other_teams(node: Node) -> None:
    """The guide's example: every API of DevTeam assigned to Team2 and Team3."""
    admin = node.admin
    dev, team2, team3 = [(await make_team(node, n, []))["id"] for n in ("DevTeam", "Team2", "Team3")]
    d1 = await make_api(admin, "d1", teams=["DevTeam"])
    d2 = await make_api(admin, "d2", teams=["DevTeam", "Team3"])
    o1 = await make_api(admin, "o1", teams=["Team2"])
    app = await make_app(admin, "dev-app", teams=["DevTeam"])
    r = await admin.post("/assets/team", json={"assetType": "API", "currentTeams": ["DevTeam"],
                                               "newTeams": ["Team2", "Team3"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "OK"
    assert sorted(body["matchingAssets"]["api"]) == sorted([d1["id"], d2["id"]])
    assert "[Administrators, Team2, Team3]" in body["message"]
    for api in (d1, d2):
        assert await _api_teams(node, api["id"]) == [priv.ADMINISTRATORS, team2, team3]
    assert await _api_teams(node, o1["id"]) == [priv.ADMINISTRATORS, team2]
    assert (await admin.get(f"/applications/{app['id']}")).json()["applications"][0]["teams"] == [
        priv.ADMINISTRATORS, dev]

    # assetIds and currentTeams together: both must hold (o1 is not in Team3 and stays).
    r = await admin.post("/assets/team", json={"assetType": "api", "assetIds": [d1["id"], o1["id"]],
                                               "currentTeams": ["Team3"], "newTeams": ["DevTeam"]})
    assert r.json()["matchingAssets"] == {"api": [d1["id"]]}
    assert await _api_teams(node, d1["id"]) == [priv.ADMINISTRATORS, dev]
    assert await _api_teams(node, o1["id"]) == [priv.ADMINISTRATORS, team2]

    # Nothing matches: nothing changes.
    r = await admin.post("/assets/team", json={"assetType": "API", "currentTeams": [priv.PROVIDERS],
                                               "newTeams": ["Team2"]})
    assert r.status_code == 200 and r.json()["matchingAssets"] == {}


async def test_every_asset_type_at_once(sqlite_node: Node) -> None:
    admin = sqlite_node.admin
    dev = (await make_team(sqlite_node, "DevTeam", []))["id"]
    new = (await make_team(sqlite_node, "NewTeam", []))["id"]
    assets = {"api": (await make_api(admin, "a", teams=[dev]))["id"],
              "application": (await make_app(admin, "b", teams=[dev]))["id"],
              "package": (await make_package(admin, "c", teams=[dev]))["id"],
              "plan": (await make_plan(admin, "d", teams=[dev]))["id"]}
    untouched = (await make_app(admin, "e", teams=[new]))["id"]
    r = await admin.post("/assets/team", json={"assetType": "*", "currentTeams": [dev], "newTeams": [new]})
    assert r.status_code == 200, r.text
    assert r.json()["matchingAssets"] == {k: [v] for k, v in assets.items()}
    assert (await admin.get(f"/packages/{assets['package']}")).json()["packageResponse"]["teams"] == [
        priv.ADMINISTRATORS, new]
    assert (await admin.get(f"/plans/{assets['plan']}")).json()["planResponse"]["teams"] == [priv.ADMINISTRATORS, new]
    # assetIds with '*': each id is looked up across the kinds.
    r = await admin.post("/assets/team", json={"assetType": "*", "assetIds": [assets["plan"], untouched],
                                               "newTeams": [dev]})
    assert r.json()["matchingAssets"] == {"plan": [assets["plan"]], "application": [untouched]}


@pytest.mark.parametrize("body, fragment", [
    ({"assetIds": ["x"], "newTeams": ["Default"]}, "'assetType'"),
    ({"assetType": "SERVICE", "assetIds": ["x"], "newTeams": ["Default"]}, "'assetType'"),
    ({"assetType": "API", "assetIds": ["API_ID"]}, "'newTeams' is required"),
    ({"assetType": "API", "assetIds": ["API_ID"], "newTeams": []}, "'newTeams' is required"),
    ({"assetType": "API", "newTeams": ["Default"]}, "'assetIds' or 'currentTeams'"),
    ({"assetType": "API", "assetIds": "API_ID", "newTeams": ["Default"]}, "'assetIds' must be a list"),
    ({"assetType": "API", "assetIds": ["API_ID"], "newTeams": ["Nope"]}, "unknown team 'Nope'"),
    ({"assetType": "API", "currentTeams": ["Nope"], "newTeams": ["Default"]}, "unknown team 'Nope'"),
    ({"assetType": "API", "assetIds": ["no-such-api"], "newTeams": ["Default"]}, "'no-such-api'"),
    ({"assetType": "APPLICATION", "assetIds": ["API_ID"], "newTeams": ["Default"]}, "no application"),
])
async def test_bad_team_changes(sqlite_node: Node, body: dict[str, Any], fragment: str) -> None:
    api = await make_api(sqlite_node.admin, "kept", teams=[priv.PROVIDERS])
    body = {k: ([api["id"] if i == "API_ID" else i for i in v] if k == "assetIds" and isinstance(v, list) else v)
            for k, v in body.items()}
    r = await sqlite_node.admin.post("/assets/team", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["errorDetails"]
    assert await _api_teams(sqlite_node, api["id"]) == [priv.ADMINISTRATORS, priv.PROVIDERS]


async def test_who_may_change_teams(sqlite_node: Node) -> None:
    node = sqlite_node
    await add_user(node, "owner")
    await add_user(node, "plain")
    await make_team(node, "TeamA", [priv.CHANGE_OWNERSHIP, priv.MANAGE_APIS], users=["owner"])
    b = (await make_team(node, "TeamB", [priv.MANAGE_APIS], users=["plain"]))["id"]
    c = (await make_team(node, "TeamC", []))["id"]
    await set_team_work(node, True)
    mine = await make_api(node.admin, "mine", teams=["TeamA", "TeamC"])
    theirs = await make_api(node.admin, "theirs", teams=["TeamB"])
    async with client(node, "plain") as plain:
        r = await plain.post("/assets/team", json={"assetType": "API", "assetIds": [theirs["id"]],
                                                   "newTeams": ["TeamB"]})
        assert r.status_code == 403 and priv.CHANGE_OWNERSHIP in r.json()["errorDetails"]
    async with client(node, "owner") as owner:
        # Only teams one is a member of can be added; an invisible asset cannot be chosen.
        r = await owner.post("/assets/team", json={"assetType": "API", "assetIds": [mine["id"]],
                                                   "newTeams": ["TeamA", "TeamB"]})
        assert r.status_code == 403 and "TeamB" in r.text
        r = await owner.post("/assets/team", json={"assetType": "API", "assetIds": [theirs["id"]],
                                                   "newTeams": ["TeamA"]})
        assert r.status_code == 400 and theirs["id"] in r.json()["errorDetails"]
        # A team already on the asset may stay although the caller is not in it; Default may be added.
        r = await owner.post("/assets/team", json={"assetType": "API", "assetIds": [mine["id"]],
                                                   "newTeams": ["TeamC", priv.DEFAULT_TEAM]})
        assert r.status_code == 200, r.text
        assert await _api_teams(node, mine["id"]) == [priv.ADMINISTRATORS, c, priv.DEFAULT_TEAM]
        # Bulk by team only reaches what the caller sees.
        r = await owner.post("/assets/team", json={"assetType": "API", "currentTeams": [priv.ADMINISTRATORS],
                                                   "newTeams": ["TeamA"]})
        assert r.json()["matchingAssets"] == {"api": [mine["id"]]}
    assert await _api_teams(node, theirs["id"]) == [priv.ADMINISTRATORS, b]


async def test_change_owner(sqlite_node: Node) -> None:
    admin = sqlite_node.admin
    await add_user(sqlite_node, "user1")
    api = await make_api(admin, "owned")
    app = await make_app(admin, "owned-app")
    r = await admin.post("/assets/owner", json={"assetType": "*", "newOwner": "user1",
                                                "currentOwner": "Administrator"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "OK" and "user1" in r.json()["message"]
    assert r.json()["matchingAssets"] == {"api": [api["id"]], "application": [app["id"]]}
    assert (await admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]["owner"] == "user1"
    assert (await admin.get(f"/applications/{app['id']}")).json()["applications"][0]["owner"] == "user1"
    # One asset by id, to a team.
    team = await make_team(sqlite_node, "Owners", [])
    r = await admin.post("/assets/owner", json={"assetType": "APPLICATION", "assetIds": [app["id"]],
                                                "newOwner": team["id"], "ownerType": "team"})
    assert r.status_code == 200, r.text
    assert (await admin.get(f"/applications/{app['id']}")).json()["applications"][0]["owner"] == "Owners"
    assert (await admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]["owner"] == "user1"

    for body, fragment in (
        ({"assetType": "API", "assetIds": [api["id"]], "newOwner": "ghost"}, "unknown user 'ghost'"),
        ({"assetType": "API", "assetIds": [api["id"]]}, "'newOwner' is required"),
        ({"assetType": "PACKAGE", "assetIds": [api["id"]], "newOwner": "user1"}, "'assetType'"),
        ({"assetType": "API", "newOwner": "user1"}, "'assetIds' or 'currentOwner'"),
        ({"assetType": "API", "assetIds": [api["id"]], "newOwner": "user1", "ownerType": "robot"}, "'ownerType'"),
        ({"assetType": "API", "assetIds": [app["id"]], "newOwner": "Administrator"}, app["id"]),
    ):
        r = await admin.post("/assets/owner", json=body)
        assert r.status_code == 400, (body, r.text)
        assert fragment in r.json()["errorDetails"]
    assert (await admin.get(f"/apis/{api['id']}")).json()["apiResponse"]["api"]["owner"] == "user1"
    await add_user(sqlite_node, "nobody")
    async with client(sqlite_node, "nobody") as nobody:
        r = await nobody.post("/assets/owner", json={"assetType": "*", "newOwner": "nobody",
                                                     "currentOwner": "user1"})
        assert r.status_code == 403 and priv.CHANGE_OWNERSHIP in r.json()["errorDetails"]
