"""``/oauthTokens`` with team work (issue 5): a user sees and revokes only the tokens of clients
whose application is visible to them; administrators see all; another team's token is a 404 and
stays active."""

from __future__ import annotations

from typing import Any

from portico.security import privileges as priv
from tests.admin.teams_support import add_user, client, make_team, set_team_work
from tests.policies.test_token_identification import access_token, local_client
from tests.support.node import Node


async def _two_teams(node: Node) -> tuple[dict[str, Any], dict[str, Any]]:
    """Team work on; alice in TeamA and bob in TeamB, each team owning an application with its own
    local OAuth client. Returns the two clients' registrations (A's, B's)."""
    await set_team_work(node, True)
    privileges = [priv.VIEW_ADMIN_CONFIG, priv.MANAGE_SECURITY_CONFIG, priv.MANAGE_APPLICATIONS]
    for login in ("alice", "bob"):
        await add_user(node, login)
    team_a = (await make_team(node, "TeamA", privileges, users=["alice"]))["id"]
    team_b = (await make_team(node, "TeamB", privileges, users=["bob"]))["id"]
    reg_a, sid_a = await local_client(node, "client-a")
    reg_b, sid_b = await local_client(node, "client-b")
    for name, team, sid in (("app-a", team_a, sid_a), ("app-b", team_b, sid_b)):
        r = await node.admin.post("/applications", json={"name": name, "teams": [team], "authStrategyIds": [sid]})
        assert r.status_code == 200, r.text
    return reg_a, reg_b


async def test_tokens_are_narrowed_to_the_callers_applications(node: Node) -> None:
    reg_a, reg_b = await _two_teams(node)
    for reg in (reg_a, reg_a, reg_b):
        await access_token(node, reg)
    everything = (await node.admin.get("/oauthTokens")).json()
    assert everything["total"] == 3
    b_token = next(t for t in everything["oauthTokens"] if t["clientId"] == reg_b["clientId"])
    async with client(node, "alice") as alice, client(node, "bob") as bob:
        mine = (await alice.get("/oauthTokens")).json()
        assert mine["total"] == 2 and {t["clientId"] for t in mine["oauthTokens"]} == {reg_a["clientId"]}
        assert (await bob.get("/oauthTokens")).json()["total"] == 1
        other = (await alice.get("/oauthTokens", params={"clientId": reg_b["clientId"]})).json()
        assert other == {"oauthTokens": [], "total": 0}
        # another team's token: unknown to alice, and left active
        assert (await alice.delete(f"/oauthTokens/{b_token['id']}")).status_code == 404
        listed = (await node.admin.get("/oauthTokens", params={"clientId": reg_b["clientId"]})).json()
        assert listed["oauthTokens"][0]["revoked"] is False
        r = await bob.delete(f"/oauthTokens/{b_token['id']}")
        assert r.status_code == 200 and r.json()["oauthToken"]["revoked"] is True
    # team work off again: functional privileges alone decide
    await set_team_work(node, False)
    async with client(node, "alice") as alice:
        assert (await alice.get("/oauthTokens")).json()["total"] == 3


async def test_removing_expired_tokens_is_narrowed_to_the_callers_applications(node: Node) -> None:
    reg_a, reg_b = await _two_teams(node)
    for reg in (reg_a, reg_a, reg_b, reg_b):
        await access_token(node, reg)
    # one dead (revoked) token per client, one live one each
    for reg in (reg_a, reg_b):
        listed = (await node.admin.get("/oauthTokens", params={"clientId": reg["clientId"]})).json()
        r = await node.admin.delete(f"/oauthTokens/{listed['oauthTokens'][0]['id']}")
        assert r.status_code == 200, r.text

    async def clients_left() -> list[str]:
        listed = (await node.admin.get("/oauthTokens")).json()["oauthTokens"]
        return sorted(t["clientId"] for t in listed)

    async with client(node, "alice") as alice, client(node, "bob") as bob:
        r = await alice.delete("/oauthTokens/expired")
        assert r.status_code == 200 and r.json() == {"removedTokensCount": 1}
        # bob's dead token is left for bob (or an administrator)
        assert await clients_left() == sorted([reg_a["clientId"], reg_b["clientId"], reg_b["clientId"]])
        r = await bob.delete("/oauthTokens/expired")
        assert r.json() == {"removedTokensCount": 1}
        assert await clients_left() == sorted([reg_a["clientId"], reg_b["clientId"]])
    # an administrator removes every client's dead tokens
    for reg in (reg_a, reg_b):
        listed = (await node.admin.get("/oauthTokens", params={"clientId": reg["clientId"]})).json()
        assert (await node.admin.delete(f"/oauthTokens/{listed['oauthTokens'][0]['id']}")).status_code == 200
    assert (await node.admin.delete("/oauthTokens/expired")).json() == {"removedTokensCount": 2}
    assert await clients_left() == []
