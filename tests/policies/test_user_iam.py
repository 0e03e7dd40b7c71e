"""inboundAuthTransport and authorizeUser end to end: HTTP basic against Portico users, groups."""

from __future__ import annotations

from typing import Any

import pytest

from portico.security.passwords import hash_password
from portico.security.principal import GROUP, TEAM, USER
from tests.gateway.test_runtime import add_action
from tests.policies.spec_support import post_action
from tests.support.node import ADMIN, Node
from tests.support.upstream import Upstream, spec_for


async def add_user(node: Node, login: str, password: str, groups: tuple[str, ...] = (),
                   accessProfiles: tuple[str, ...] = ()) -> None:
    """Write the user asset directly, and make it a member of the named groups and teams (created
    when missing; membership lives on the group or team)."""
    body = {"loginId": login, "passwordHash": hash_password(password), "active": True, "type": "local"}
    async with node.portico.store.transaction() as tx:
        await tx.insert(USER, login, body, name=login)
        for kind, names in ((GROUP, groups), (TEAM, accessProfiles)):
            for name in names:
                row = await tx.get(kind, name)
                if row is None:
                    await tx.insert(kind, name, {"id": name, "name": name, "userIds": [login]}, name=name)
                else:
                    members = [*row.body.get("userIds", []), login]
                    await tx.update(kind, name, {**row.body, "userIds": members}, row.revision, name=name)
    await node.reload()


async def test_inbound_auth_transport(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "inboundAuthTransport", "IAM", [])
    r = await node.gw.get("/Echo/1.0/echo")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert "The request cannot be authenticated." in r.json()["Exception"]
    r = await node.gw.get("/Echo/1.0/echo", auth=("Administrator", "wrong"))
    assert r.status_code == 401
    r = await node.gw.get("/Echo/1.0/echo", headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401
    r = await node.gw.get("/Echo/1.0/echo", auth=ADMIN)
    assert r.status_code == 200 and r.json()["method"] == "GET"


async def test_authorize_user_by_name_and_group(node: Node, upstream: Upstream) -> None:
    await add_user(node, "alice", "a-secret", groups=("Pet-Keepers",))
    await add_user(node, "bob", "b-secret", groups=("Visitors",))
    await add_user(node, "carol", "c-secret", accessProfiles=("Vets",))
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "inboundAuthTransport", "IAM", [])
    await add_action(node, api, "authorizeUser", "IAM", [
        {"templateKey": "users", "values": ["Administrator"]},
        {"templateKey": "groups", "values": ["Pet-Keepers"]},
        {"templateKey": "accessProfiles", "values": ["Vets"]}])
    for creds in (ADMIN, ("alice", "a-secret"), ("carol", "c-secret")):
        r = await node.gw.get("/Echo/1.0/echo", auth=creds)
        assert r.status_code == 200, (creds, r.text)
    r = await node.gw.get("/Echo/1.0/echo", auth=("bob", "b-secret"))
    assert r.status_code == 403 and "bob is not authorized" in r.json()["Exception"]
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 401


async def test_authorize_user_alone_authenticates(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "authorizeUser", "IAM", [{"templateKey": "users", "values": ["Administrator"]}])
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 401
    assert (await node.gw.get("/Echo/1.0/echo", auth=("Administrator", "nope"))).status_code == 401
    assert (await node.gw.get("/Echo/1.0/echo", auth=ADMIN)).status_code == 200


@pytest.mark.parametrize(("template", "params", "field"), [
    ("inboundAuthTransport", [{"templateKey": "authType", "values": ["KERBEROS"]}], "authType"),
    ("authorizeUser", [], "users, groups or accessProfiles"),
    ("authorizeUser", [{"templateKey": "users", "values": [5]}], "users"),
    ("authorizeUser", [{"templateKey": "teams", "values": ["x"]}], "teams"),
])
async def test_bad_config_is_400(sqlite_node: Node, template: str, params: list[Any], field: str) -> None:
    r = await post_action(sqlite_node, template, params)
    assert r.status_code == 400 and field in r.json()["errorDetails"], r.text
