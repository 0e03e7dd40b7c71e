"""Team work (``enableTeamWork``): APIs, applications, packages and plans visible and manageable only
by their teams' members, the exceptions of the guide's "Team Support Considerations" table, its
scenarios 1 and 2, teams given at creation, and switching the feature off and on."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

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

ASSET_PRIVILEGES = [priv.MANAGE_APIS, priv.ACTIVATE_APIS, priv.MANAGE_APPLICATIONS, priv.MANAGE_PACKAGES,
                    priv.ACTIVATE_PACKAGES]


async def _two_teams(node: Node) -> tuple[str, str]:
    await add_user(node, "alice")
    await add_user(node, "bob")
    a = await make_team(node, "TeamA", ASSET_PRIVILEGES, users=["alice"])
    b = await make_team(node, "TeamB", ASSET_PRIVILEGES, users=["bob"])
    return a["id"], b["id"]


async def _assert_hidden(c: httpx.AsyncClient, path: str, body: Mapping[str, object]) -> None:
    for method in ("GET", "PUT", "DELETE"):
        r = await c.request(method, path, json=body if method == "PUT" else None)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert "errorDetails" in r.json()


async def test_each_asset_type_is_visible_only_to_its_teams(node: Node) -> None:
    team_a, _ = await _two_teams(node)
    await set_team_work(node, True)
    async with client(node, "alice") as alice, client(node, "bob") as bob:
        api = await make_api(alice, "alpha", teams=["TeamA"])
        assert api["teams"] == [priv.ADMINISTRATORS, team_a]   # every asset is also in Administrators
        app = await make_app(alice, "alpha-app", teams=[team_a], api_ids=[api["id"]])
        plan = await make_plan(alice, "alpha-plan", teams=["teama"])
        package = await make_package(alice, "alpha-pkg", teams=["TeamA"], apiIds=[api["id"]], planIds=[plan["id"]])
        for asset in (app, plan, package):
            assert asset["teams"] == [priv.ADMINISTRATORS, team_a]
        cases = [
            (f"/apis/{api['id']}", {"apiDescription": "x"}, "/apis", "apiResponse", "api"),
            (f"/applications/{app['id']}", {"description": "x"}, "/applications", "applications", None),
            (f"/plans/{plan['id']}", {"description": "x"}, "/plans", "planResponse", None),
            (f"/packages/{package['id']}", {"description": "x"}, "/packages", "packageResponse", None),
        ]
        for path, body, collection, key, inner in cases:
            asset_id = path.rsplit("/", 1)[1]
            assert (await alice.get(path)).status_code == 200
            assert (await node.admin.get(path)).status_code == 200
            assert asset_id in await ids(alice, collection, key, inner)
            assert asset_id in await ids(node.admin, collection, key, inner)
            assert asset_id not in await ids(bob, collection, key, inner)
            await _assert_hidden(bob, path, body)
        for path in (f"/apis/{api['id']}/activate", f"/packages/{package['id']}/activate",
                     f"/apis/{api['id']}/mock/enable"):
            assert (await bob.put(path)).status_code == 404
        for path in (f"/apis/{api['id']}/versions", f"/apis/{api['id']}/source", f"/apis/{api['id']}/applications",
                     f"/applications/{app['id']}/apis", f"/packages/{package['id']}/plans"):
            assert (await bob.get(path)).status_code == 404, path
        assert (await bob.get(f"/apis?apiIds={api['id']}")).json()["apiResponse"] == []
        for policy_id in (api["policies"][0], plan["policies"][0], package["policyIds"][0]):
            assert (await alice.get(f"/policies/{policy_id}")).status_code == 200
            assert (await bob.get(f"/policies/{policy_id}")).status_code == 404
            r = await bob.put(f"/policies/{policy_id}", json={"policy": {"names": [{"value": "x"}]}})
            assert r.status_code == 404, r.text
            assert policy_id not in await ids(bob, "/policies", "policy")
        assert (await bob.delete(f"/apis?apiIds={api['id']}")).status_code == 404
        assert (await bob.delete(f"/applications?ids={app['id']}")).status_code == 404

        # What bob cannot see he cannot reference either: unknown id, 400, nothing written.
        r = await bob.post("/applications", json={"name": "b-app", "apiIDs": [api["id"]]})
        assert r.status_code == 400 and "unknown API id" in r.json()["errorDetails"]
        r = await bob.post("/packages", json={"name": "b-pkg", "apiIds": [api["id"]]})
        assert r.status_code == 400 and "unknown API id" in r.json()["errorDetails"]
        r = await bob.post("/packages", json={"name": "b-pkg", "planIds": [plan["id"]]})
        assert r.status_code == 400 and "unknown plan id" in r.json()["errorDetails"]

        # Subscriptions follow their application.
        assert (await alice.put(f"/packages/{package['id']}/activate")).status_code == 200
        r = await alice.post("/subscriptions", json={"packageId": package["id"], "planId": plan["id"],
                                                     "applicationId": app["id"]})
        assert r.status_code == 201, r.text
        assert (await alice.get(f"/subscriptions/{app['id']}")).status_code == 200
        assert (await bob.get(f"/subscriptions/{app['id']}")).status_code == 404
        assert (await bob.delete(f"/subscriptions/{app['id']}")).status_code == 404
        assert [s["id"] for s in (await alice.get("/subscriptions")).json()] == [app["id"]]
        assert (await bob.get("/subscriptions")).json() == []
        r = await bob.post("/subscriptions", json={"packageId": package["id"], "planId": plan["id"],
                                                   "applicationName": "b-sub"})
        assert r.status_code == 400 and "unknown package" in r.json()["errorDetails"]


async def test_applications_of_a_visible_api_are_listed_by_name_and_can_be_unregistered(sqlite_node: Node) -> None:
    node = sqlite_node
    team_a, team_b = await _two_teams(node)
    await set_team_work(node, True)
    admin = node.admin
    async with client(node, "alice") as alice:
        api_a = await make_api(alice, "api-a", teams=["TeamA"])
        app_a = await make_app(alice, "app-a", teams=["TeamA"], api_ids=[api_a["id"]])
    api_b = await make_api(admin, "api-b", teams=["TeamB"])
    app_b = await make_app(admin, "app-b", teams=["TeamB"], api_ids=[api_a["id"], api_b["id"]])
    r = await admin.put(f"/applications/{app_a['id']}/apis", json={"apiIDs": [api_a["id"], api_b["id"]]})
    assert r.status_code == 200
    async with client(node, "alice") as alice:
        listed = {a["id"]: a for a in (await alice.get(f"/apis/{api_a['id']}/applications")).json()["applications"]}
        assert "accessTokens" in listed[app_a["id"]]
        assert listed[app_b["id"]] == {"id": app_b["id"], "name": "app-b"}   # by name only
        assert (await alice.get(f"/applications/{app_b['id']}")).status_code == 404

        # API side: alice may unregister app-b from her API, and do nothing else with it.
        r = await alice.put(f"/applications/{app_b['id']}/apis", json={"apiIDs": [api_a["id"], "x"]})
        assert r.status_code == 404
        r = await alice.put(f"/applications/{app_b['id']}/apis", json={"apiIDs": [api_a["id"]]})
        assert r.status_code == 404    # removing an API she cannot see is not hers to do
        r = await alice.put(f"/applications/{app_b['id']}/apis", json={"apiIDs": [api_b["id"]]})
        assert r.status_code == 200, r.text
        assert (await admin.get(f"/applications/{app_b['id']}/apis")).json() == {"apiIDs": [api_b["id"]]}

        # Application side: the APIs of her application are listed, invisible ones included; she may
        # remove them, not add them.
        assert (await alice.get(f"/applications/{app_a['id']}/apis")).json() == {
            "apiIDs": [api_a["id"], api_b["id"]]}
        r = await alice.put(f"/applications/{app_a['id']}/apis", json={"apiIDs": [api_a["id"]]})
        assert r.status_code == 200
        r = await alice.put(f"/applications/{app_a['id']}/apis", json={"apiIDs": [api_a["id"], api_b["id"]]})
        assert r.status_code == 400 and "unknown API id" in r.json()["errorDetails"]

        # Aliases, global policies and teams are visible to all.
        r = await admin.post("/alias", json={"name": "backend", "type": "simple", "value": "x"})
        assert r.status_code == 201, r.text
        alias_id = r.json()["alias"]["id"]
        assert (await alice.get(f"/alias/{alias_id}")).status_code == 200
        assert alias_id in await ids(alice, "/alias", "alias")
        # Global policies too; an API's own policy goes with the API.
        alice_policies = await ids(alice, "/policies", "policy")
        assert alice_policies == await ids(admin, "/policies", "policy") - set(api_b["policies"])
        assert any(i.startswith("GlobalLogInvocationPolicy") for i in alice_policies)
        assert set(api_a["policies"]) <= alice_policies
        assert {team_a, team_b, priv.DEFAULT_TEAM} <= await ids(alice, "/accessProfiles", "accessProfiles")


async def test_every_version_number_is_listed_details_only_of_visible_ones(sqlite_node: Node) -> None:
    node = sqlite_node
    team_a, team_b = await _two_teams(node)
    await set_team_work(node, True)
    v1 = await make_api(node.admin, "multi", teams=["TeamA"])
    r = await node.admin.post(f"/apis/{v1['id']}/versions", json={"newApiVersion": "2.0"})
    assert r.status_code == 200, r.text
    v2 = r.json()["apiResponse"]["api"]
    assert v2["teams"] == [priv.ADMINISTRATORS, team_a]   # a new version keeps the teams
    r = await node.admin.post("/assets/team", json={"assetType": "API", "assetIds": [v2["id"]],
                                                    "newTeams": ["TeamB"]})
    assert r.status_code == 200, r.text
    async with client(node, "alice") as alice:
        r = await alice.get(f"/apis/{v1['id']}/versions")
        body = r.json()
        assert [v["versionNumber"] for v in body["versions"]] == ["1.0", "2.0"]
        assert [a["api"]["id"] for a in body["apiResponse"]] == [v1["id"]]
        assert (await alice.get(f"/apis/{v2['id']}")).status_code == 404
    async with client(node, "bob") as bob:
        r = await bob.get(f"/apis/{v2['id']}/versions")
        assert [a["api"]["id"] for a in r.json()["apiResponse"]] == [v2["id"]]
        assert r.json()["apiResponse"][0]["api"]["teams"] == [priv.ADMINISTRATORS, team_b]


async def test_teams_given_at_creation(sqlite_node: Node) -> None:
    node = sqlite_node
    team_a, team_b = await _two_teams(node)
    await add_user(node, "provider", groups=[priv.PROVIDERS])
    await set_team_work(node, True)
    async with client(node, "alice") as alice:
        r = await alice.post("/apis", json={"type": "openapi", "apiDefinition": {
            "openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}, "teams": ["TeamB"]})
        assert r.status_code == 403 and "not a member" in r.json()["errorDetails"]
        r = await alice.post("/applications", json={"name": "x", "teams": ["NoSuchTeam"]})
        assert r.status_code == 400 and "unknown team 'NoSuchTeam'" in r.json()["errorDetails"]
        r = await alice.post("/plans", json={"name": "x", "teams": "TeamA,TeamB"})
        assert r.status_code == 403
        r = await alice.post("/packages", json={"name": "x", "teams": [5]})
        assert r.status_code == 400 and "'teams'" in r.json()["errorDetails"]
        assert await ids(node.admin, "/applications", "applications") == set()
        # No team named: the creator's own teams, so the creator keeps seeing the asset.
        app = await make_app(alice, "mine")
        assert app["teams"] == [priv.ADMINISTRATORS, team_a]
        # Default is every user's team, so anyone may name it.
        shared = await make_app(alice, "shared", teams=[priv.DEFAULT_TEAM])
    async with client(node, "provider") as provider:
        api = await make_api(provider, "from-provider")
        assert api["teams"] == [priv.ADMINISTRATORS, priv.PROVIDERS]
    async with client(node, "bob") as bob:
        assert shared["id"] in await ids(bob, "/applications", "applications")
        assert app["id"] not in await ids(bob, "/applications", "applications")
    # An administrator may name any team and sees everything.
    other = await make_app(node.admin, "admins", teams=["TeamB"])
    assert other["teams"] == [priv.ADMINISTRATORS, team_b]
    assert (await make_app(node.admin, "plain"))["teams"] == [priv.ADMINISTRATORS]


async def test_existing_assets_go_to_default_and_disabling_restores_privilege_access(node: Node) -> None:
    team_a, _ = await _two_teams(node)
    legacy = await make_api(node.admin, "legacy")
    assert legacy["teams"] == []
    async with client(node, "alice") as alice, client(node, "bob") as bob:
        private = await make_api(alice, "private", teams=["TeamA"])   # team work off: assignments kept anyway
        assert (await bob.get(f"/apis/{private['id']}")).status_code == 200
        await set_team_work(node, True)
        r = await node.admin.get(f"/apis/{legacy['id']}")
        assert r.json()["apiResponse"]["api"]["teams"] == [priv.ADMINISTRATORS, priv.DEFAULT_TEAM]
        for c in (alice, bob):   # every user is in Default
            assert (await c.get(f"/apis/{legacy['id']}")).status_code == 200
        assert (await bob.get(f"/apis/{private['id']}")).status_code == 404
        # Removing Default by hand makes the legacy API private.
        r = await node.admin.post("/assets/team", json={"assetType": "API", "assetIds": [legacy["id"]],
                                                        "newTeams": ["TeamA"]})
        assert r.status_code == 200, r.text
        assert (await bob.get(f"/apis/{legacy['id']}")).status_code == 404

        await set_team_work(node, False)
        for c in (alice, bob):
            assert {legacy["id"], private["id"]} <= await ids(c, "/apis", "apiResponse", "api")
            r = await c.put(f"/apis/{private['id']}", json={"apiDescription": "by privilege"})
            assert r.status_code == 200, r.text
        r = await node.admin.get(f"/apis/{private['id']}")
        assert r.json()["apiResponse"]["api"]["teams"] == [priv.ADMINISTRATORS, team_a]   # not lost

        await set_team_work(node, True)
        assert (await bob.get(f"/apis/{private['id']}")).status_code == 404
        assert (await alice.get(f"/apis/{private['id']}")).status_code == 200


async def test_scenario_1_privileges_apply_to_every_asset_of_the_team(sqlite_node: Node) -> None:
    """Team_A holds Manage APIs, Team_B does not; both have API_1 and API_2: Team_A's members manage
    both, Team_B's members only see them."""
    node = sqlite_node
    await add_user(node, "u1")
    await add_user(node, "u2")
    await make_team(node, "Team_A", [priv.MANAGE_APIS], users=["u1"])
    await make_team(node, "Team_B", [], users=["u2"])
    await set_team_work(node, True)
    apis = [await make_api(node.admin, f"API_{i}", teams=["Team_A", "Team_B"]) for i in (1, 2)]
    async with client(node, "u1") as u1, client(node, "u2") as u2:
        for api in apis:
            path = f"/apis/{api['id']}"
            assert (await u1.put(path, json={"apiDescription": "managed"})).status_code == 200
            assert (await u2.get(path)).status_code == 200
            r = await u2.put(path, json={"apiDescription": "not allowed"})
            assert r.status_code == 403 and priv.MANAGE_APIS in r.json()["errorDetails"]
        assert {a["id"] for a in apis} == await ids(u2, "/apis", "apiResponse", "api")


async def test_scenario_2_privileges_are_the_union_over_the_users_teams(sqlite_node: Node) -> None:
    """User_2 is in Team_B (Manage APIs) and Team_C (no privilege). API_2 assigned to Team_C: User_2
    can still manage it; a user only in Team_C cannot."""
    node = sqlite_node
    await add_user(node, "user_2")
    await add_user(node, "user_c")
    await make_team(node, "Team_B", [priv.MANAGE_APIS], users=["user_2"])
    await make_team(node, "Team_C", [], users=["user_2", "user_c"])
    await set_team_work(node, True)
    api_2 = await make_api(node.admin, "API_2", teams=["Team_C"])
    path = f"/apis/{api_2['id']}"
    async with client(node, "user_2") as user_2, client(node, "user_c") as user_c:
        assert (await user_2.put(path, json={"apiDescription": "still mine"})).status_code == 200
        assert (await user_c.get(path)).status_code == 200
        assert (await user_c.put(path, json={"apiDescription": "no"})).status_code == 403
        # The privilege does not make the asset visible: an API of no team of User_2 stays hidden.
        hidden = await make_api(node.admin, "elsewhere", teams=[priv.PROVIDERS])
        assert (await user_2.get(f"/apis/{hidden['id']}")).status_code == 404
        assert (await user_2.put(f"/apis/{hidden['id']}", json={"apiDescription": "x"})).status_code == 404


async def test_global_search_returns_only_visible_assets(sqlite_node: Node) -> None:
    node = sqlite_node
    await _two_teams(node)
    await make_team(node, "Readers", [priv.VIEW_ADMIN_CONFIG], users=["alice", "bob"])
    await set_team_work(node, True)
    pet_a = await make_api(node.admin, "pet-a", teams=["TeamA"])
    pet_b = await make_api(node.admin, "pet-b", teams=["TeamB"])
    await make_api(node.admin, "cat-a", teams=["TeamA"])
    app_a = await make_app(node.admin, "pet-app", teams=["TeamA"])
    plan_b = await make_plan(node.admin, "pet-plan", teams=["TeamB"])
    query = {"types": ["API", "application", "PLAN"], "scope": [{"attributeName": "name", "keyword": "pet.*"}]}

    async def found(c: httpx.AsyncClient, body: dict[str, object]) -> dict[str, set[str]]:
        r = await c.post("/search", json=body)
        assert r.status_code == 200, r.text
        return {k: {x["id"] for x in v} for k, v in r.json().items()}

    async with client(node, "alice") as alice, client(node, "bob") as bob:
        assert await found(alice, query) == {"API": {pet_a["id"]}, "APPLICATION": {app_a["id"]}, "PLAN": set()}
        assert await found(bob, query) == {"API": {pet_b["id"]}, "APPLICATION": set(), "PLAN": {plan_b["id"]}}
        assert (await found(node.admin, query))["API"] == {pet_a["id"], pet_b["id"]}
        r = await alice.post("/search/_count", json=query)
        assert r.json() == {"API": 1, "application": 1, "PLAN": 0}
        r = await alice.post("/search", json={"types": ["API"], "responseFields": ["id", "apiName"], "scope": [
            {"attributeName": "apiName", "operator": "endsWith", "keyword": "-A"}], "sortByField": "apiName"})
        assert r.json() == {"API": [{"id": r.json()["API"][0]["id"], "apiName": "cat-a"},
                                    {"id": pet_a["id"], "apiName": "pet-a"}]}
        for scope in ([{"attributeName": "name", "keyword": "("}], [{"attributeName": "name"}],
                      [{"attributeName": "name", "keyword": "x", "operator": "like"}]):
            r = await alice.post("/search", json={"types": ["API"], "scope": scope})
            assert r.status_code == 400, (scope, r.text)
        await set_team_work(node, False)
        assert (await found(alice, query))["API"] == {pet_a["id"], pet_b["id"]}


async def test_routes_about_an_api_follow_its_visibility(sqlite_node: Node) -> None:
    """/apis/{id}/globalPolicies, /serviceResultCache (by id and by name) and /packages/{id}/apis: an API
    the caller cannot see is unknown there too."""
    node = sqlite_node
    await add_user(node, "alice")
    await add_user(node, "bob")
    await make_team(node, "TeamA", [priv.MANAGE_APIS, priv.EXECUTE_CACHE_APIS], users=["alice"])
    team_b = await make_team(node, "TeamB", [priv.MANAGE_APIS, priv.EXECUTE_CACHE_APIS], users=["bob"])
    await set_team_work(node, True)
    async with client(node, "alice") as alice, client(node, "bob") as bob:
        alpha = await make_api(alice, "alpha", teams=["TeamA"])
        beta = await make_api(bob, "beta", teams=["TeamB"])
        package = await make_package(node.admin, "mixed", teams=[team_b["id"]], apiIds=[alpha["id"], beta["id"]])
        for c, visible, hidden in ((alice, alpha, beta), (bob, beta, alpha)):
            assert (await c.get(f"/apis/{visible['id']}/globalPolicies")).status_code == 200
            r = await c.get(f"/apis/{hidden['id']}/globalPolicies")
            assert r.status_code == 404 and hidden["id"] in r.json()["errorDetails"]
            assert (await c.get(f"/serviceResultCache/{visible['id']}")).json() == {"Cache size": 0}
            for method in ("GET", "DELETE"):
                assert (await c.request(method, f"/serviceResultCache/{hidden['id']}")).status_code == 404
                r = await c.request(method, "/serviceResultCache",
                                    params={"apiName": hidden["apiName"], "apiVersion": hidden["apiVersion"]})
                assert r.status_code == 404, r.text
            r = await c.get("/serviceResultCache", params={"apiName": visible["apiName"],
                                                           "apiVersion": visible["apiVersion"]})
            assert r.status_code == 200
        r = await bob.get(f"/packages/{package['id']}/apis")
        assert r.status_code == 200 and [a["id"] for a in r.json()["apiResponse"]] == [beta["id"]]
        assert alpha["apiName"] not in r.text
    r = await node.admin.get(f"/packages/{package['id']}/apis")
    assert {a["id"] for a in r.json()["apiResponse"]} == {alpha["id"], beta["id"]}
