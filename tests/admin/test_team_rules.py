"""``/rule``: global team assignment rules. CRUD in the reference's shape, validation, assignment to
existing assets on activation and to new ones on creation, and rule teams that cannot be removed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from portico.security import privileges as priv
from tests.admin.teams_support import (
    add_user,
    client,
    ids,
    make_api,
    make_app,
    make_package,
    make_plan,
    make_team,
    set_team_work,
)
from tests.support.node import Node


def _rule(name: str, teams: list[str], contexts: list[str] | None = None,
          expressions: list[dict[str, str]] | None = None, operator: str = "AND") -> dict[str, Any]:
    return {"name": name, "ruleType": "teamAssignmentRule", "attributeContexts": contexts or ["api"],
            "ruleLogicalOperator": operator, "ruleExpressions": expressions or [], "teamsAssigned": teams}


def _starts(value: str) -> list[dict[str, str]]:
    return [{"attributeName": "name", "operator": "startsWith", "attributeValue": value}]


async def _teams_of(node: Node, path: str, *keys: str) -> list[str]:
    body: Any = (await node.admin.get(path)).json()
    for key in keys:
        body = body[key]
    teams: list[str] = body["teams"]
    return teams


async def test_crud_in_the_reference_shape(sqlite_node: Node) -> None:
    admin = sqlite_node.admin
    team = await make_team(sqlite_node, "PetTeam", [])
    r = await admin.post("/rule", json=_rule("pet1rule", [team["id"]], ["api", "application", "package", "plan"],
                                             _starts("pet1")))
    assert r.status_code == 201, r.text
    rule = r.json()["rule"]
    assert rule["active"] is False and rule["owner"] == "Administrator"
    assert rule["ruleType"] == "teamAssignmentRule" and rule["teamsAssigned"] == [team["id"]]
    assert rule["attributeContexts"] == ["api", "application", "package", "plan"]
    assert rule["ruleExpressions"] == [{"attributeName": "name", "operator": "startsWith", "attributeValue": "pet1"}]
    path = f"/rule/{rule['id']}"
    assert (await admin.get(path)).json() == {"rule": rule}
    assert [x["id"] for x in (await admin.get("/rule")).json()["rule"]] == [rule["id"]]
    assert (await admin.get("/rule?active=true")).json() == {"rule": []}
    assert (await admin.get("/rule?ruleType=teamAssignmentRule")).json()["rule"] == [rule]

    # Teams by name; a rule may be renamed; fields left out are kept.
    r = await admin.put(path, json={"name": "pet2rule", "teamsAssigned": ["petteam"],
                                    "ruleExpressions": _starts("pet2")})
    assert r.status_code == 200, r.text
    assert r.json()["rule"]["name"] == "pet2rule" and r.json()["rule"]["teamsAssigned"] == [team["id"]]
    assert r.json()["rule"]["attributeContexts"] == rule["attributeContexts"]
    r = await admin.put(f"{path}/activate")
    assert r.status_code == 200 and r.json()["rule"]["active"] is True
    assert len((await admin.get("/rule?active=true")).json()["rule"]) == 1
    r = await admin.put(f"{path}/deactivate")
    assert r.status_code == 200 and r.json()["rule"]["active"] is False

    assert (await admin.post("/rule", json=_rule("PET2RULE", [team["id"]]))).status_code == 409
    assert (await admin.delete(path)).status_code == 204
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("PUT", "/activate"), ("PUT", "/deactivate")):
        r = await admin.request(method, f"{path}{suffix}", json={} if method == "PUT" else None)
        assert r.status_code == 404, (method, suffix)

    await add_user(sqlite_node, "viewer")
    async with client(sqlite_node, "viewer") as viewer:
        assert (await viewer.get("/rule")).status_code == 200
        r = await viewer.post("/rule", json=_rule("mine", [team["id"]]))
        assert r.status_code == 403 and priv.MANAGE_USERS in r.json()["errorDetails"]


_MISSING = object()  # the field left out of the body


@pytest.mark.parametrize("change, fragment", [
    ({"name": ""}, "'name'"),
    ({"attributeContexts": []}, "attributeContexts"),
    ({"attributeContexts": _MISSING}, "attributeContexts"),  # a 500 (KeyError) before
    ({"attributeContexts": ["service"]}, "unknown asset type 'service'"),
    ({"ruleLogicalOperator": "XOR"}, "AND or OR"),
    ({"ruleType": "approvalRule"}, "ruleType"),
    ({"ruleExpressions": {"attributeName": "name"}}, "must be a list"),
    ({"ruleExpressions": [{"attributeName": "owner", "operator": "equals", "attributeValue": "x"}]}, "attributeName"),
    ({"ruleExpressions": [{"attributeName": "name", "operator": "matches", "attributeValue": "x"}]}, "operator"),
    ({"ruleExpressions": [{"attributeName": "name", "operator": "equals", "attributeValue": ""}]}, "attributeValue"),
    ({"teamsAssigned": []}, "teamsAssigned"),
    ({"teamsAssigned": ["NoSuchTeam"]}, "unknown team 'NoSuchTeam'"),
    ({"active": "yes"}, "'active'"),
])
async def test_bad_rules(sqlite_node: Node, change: dict[str, Any], fragment: str) -> None:
    body = {**_rule("r", [priv.DEFAULT_TEAM]), **change}
    body = {k: v for k, v in body.items() if v is not _MISSING}
    r = await sqlite_node.admin.post("/rule", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["errorDetails"]
    assert (await sqlite_node.admin.get("/rule")).json() == {"rule": []}


async def test_activation_assigns_existing_and_new_assets(node: Node) -> None:
    admin = node.admin
    team = await make_team(node, "PetTeam", [])
    pet = await make_api(admin, "pet-store")
    other = await make_api(admin, "other")
    pet_app = await make_app(admin, "pet-app")
    pet_pkg = await make_package(admin, "pet-pkg")
    r = await admin.post("/rule", json=_rule("pets", ["PetTeam"], ["api", "application"], [
        *_starts("pet"), {"attributeName": "name", "operator": "endsWith", "attributeValue": "-app"}], "OR"))
    rule = r.json()["rule"]
    assert await _teams_of(node, f"/apis/{pet['id']}", "apiResponse", "api") == []   # inactive: nothing yet

    assert (await admin.put(f"/rule/{rule['id']}/activate")).status_code == 200
    expected = [priv.ADMINISTRATORS, priv.DEFAULT_TEAM, team["id"]]   # unassigned assets keep Default
    assert await _teams_of(node, f"/apis/{pet['id']}", "apiResponse", "api") == expected
    assert (await admin.get(f"/applications/{pet_app['id']}")).json()["applications"][0]["teams"] == expected
    assert await _teams_of(node, f"/apis/{other['id']}", "apiResponse", "api") == []
    assert await _teams_of(node, f"/packages/{pet_pkg['id']}", "packageResponse") == []   # not a rule kind
    # The rule's write kept the API findable by name (versions) and its name unique.
    assert len((await admin.get(f"/apis/{pet['id']}/versions")).json()["versions"]) == 1
    r = await admin.post("/apis", json={"type": "openapi", "apiName": "pet-store", "apiDefinition": {
        "openapi": "3.0.3", "info": {"title": "pet-store", "version": "1.0"}, "paths": {}}})
    assert r.status_code == 409

    # New assets: the rule applies on creation, next to the teams asked for.
    assert (await make_api(admin, "pet-2"))["teams"] == [priv.ADMINISTRATORS, priv.DEFAULT_TEAM, team["id"]]
    assert (await make_api(admin, "pet-3", teams=[priv.PROVIDERS]))["teams"] == [
        priv.ADMINISTRATORS, priv.PROVIDERS, team["id"]]
    assert (await make_api(admin, "cat-1"))["teams"] == []
    assert (await make_app(admin, "cat-app"))["teams"] == [priv.ADMINISTRATORS, priv.DEFAULT_TEAM, team["id"]]

    # A rule's team cannot be removed by hand while the rule is active.
    change = {"assetType": "API", "assetIds": [pet["id"]], "newTeams": [priv.PROVIDERS]}
    r = await admin.post("/assets/team", json=change)
    assert r.status_code == 400 and "rule 'pets'" in r.json()["errorDetails"]
    assert await _teams_of(node, f"/apis/{pet['id']}", "apiResponse", "api") == expected
    r = await admin.post("/assets/team", json={**change, "newTeams": [priv.PROVIDERS, "PetTeam"]})
    assert r.status_code == 200, r.text
    # Once deactivated, it can.
    assert (await admin.put(f"/rule/{rule['id']}/deactivate")).status_code == 200
    assert (await admin.post("/assets/team", json=change)).status_code == 200
    assert await _teams_of(node, f"/apis/{pet['id']}", "apiResponse", "api") == [
        priv.ADMINISTRATORS, priv.PROVIDERS]
    assert (await make_api(admin, "pet-4"))["teams"] == []

    # A team a rule assigns cannot be deleted; once the rule is gone it can, and leaves the assets.
    r = await admin.delete(f"/accessProfiles/{team['id']}")
    assert r.status_code == 400 and "'pets'" in r.json()["errorDetails"]
    assert (await admin.delete(f"/rule/{rule['id']}")).status_code == 204
    assert (await admin.delete(f"/accessProfiles/{team['id']}")).status_code == 204
    assert await _teams_of(node, f"/apis/{pet['id']}", "apiResponse", "api") == [
        priv.ADMINISTRATORS, priv.PROVIDERS]
    assert (await admin.get(f"/applications/{pet_app['id']}")).json()["applications"][0]["teams"] == [
        priv.ADMINISTRATORS, priv.DEFAULT_TEAM]


async def test_a_rule_without_conditions_shows_every_asset_to_its_team(sqlite_node: Node) -> None:
    """The guide's ViewAllAssets example."""
    node = sqlite_node
    await add_user(node, "auditor")
    await make_team(node, "ViewAllAssets", [], users=["auditor"])
    await set_team_work(node, True)
    assets = {
        "/apis": ((await make_api(node.admin, "a1", teams=[priv.PROVIDERS]))["id"], "apiResponse", "api"),
        "/applications": ((await make_app(node.admin, "app1", teams=[priv.PROVIDERS]))["id"], "applications", None),
        "/packages": ((await make_package(node.admin, "pk1", teams=[priv.PROVIDERS]))["id"], "packageResponse", None),
        "/plans": ((await make_plan(node.admin, "pl1", teams=[priv.PROVIDERS]))["id"], "planResponse", None),
    }
    async with client(node, "auditor") as auditor:
        for path, (asset_id, key, inner) in assets.items():
            assert asset_id not in await ids(auditor, path, key, inner)
        r = await node.admin.post("/rule", json=_rule("ViewRule", ["ViewAllAssets"],
                                                      ["api", "application", "package", "plan"]))
        assert (await node.admin.put(f"/rule/{r.json()['rule']['id']}/activate")).status_code == 200
        for path, (asset_id, key, inner) in assets.items():
            assert asset_id in await ids(auditor, path, key, inner)
            assert (await auditor.get(f"{path}/{asset_id}")).status_code == 200


async def test_an_asset_renamed_or_retagged_to_match_an_active_rule_gets_its_teams(sqlite_node: Node) -> None:
    node = sqlite_node
    admin = node.admin
    team = await make_team(node, "PayTeam", [])
    desc = [{"attributeName": "description", "operator": "contains", "attributeValue": "payments"}]
    r = await admin.post("/rule", json={**_rule("pay", ["PayTeam"], ["api", "application", "package", "plan"],
                                                [*desc, *_starts("pay")], "OR"), "active": True})
    assert r.status_code == 201, r.text
    api = await make_api(admin, "ledger")
    app = await make_app(admin, "ledger-app")
    package = await make_package(admin, "ledger-pkg")
    plan = await make_plan(admin, "ledger-plan")
    assert [api["teams"], app["teams"], package["teams"], plan["teams"]] == [[], [], [], []]
    expected = [priv.ADMINISTRATORS, priv.DEFAULT_TEAM, team["id"]]

    r = await admin.put(f"/apis/{api['id']}", json={"apiDescription": "handles payments"})
    assert r.status_code == 200, r.text
    assert r.json()["apiResponse"]["api"]["teams"] == expected
    r = await admin.put(f"/applications/{app['id']}", json={"name": "pay-app"})
    assert r.status_code == 200 and r.json()["teams"] == expected
    r = await admin.put(f"/packages/{package['id']}", json={"name": "pay-pkg"})
    assert r.status_code == 200 and r.json()["packageResponse"]["teams"] == expected
    r = await admin.put(f"/plans/{plan['id']}", json={"description": "for payments"})
    assert r.status_code == 200 and r.json()["planResponse"]["teams"] == expected
    assert await _teams_of(node, f"/plans/{plan['id']}", "planResponse") == expected
    # renaming away keeps the teams (a rule adds, it never takes away); unrelated updates change nothing
    r = await admin.put(f"/applications/{app['id']}", json={"name": "ledger-app"})
    assert r.json()["teams"] == expected
    other = await make_app(admin, "other-app")
    r = await admin.put(f"/applications/{other['id']}", json={"description": "nothing to see"})
    assert r.json()["teams"] == []
