"""``/strategies``: local clients with generated credentials, refreshCredentials, dynamic client
registration at an external server through a provider's field mapping, and the OAuth token list."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portico.security import privileges as priv
from tests.admin.teams_support import add_user, client, make_team, set_team_work
from tests.support.node import Node, running_node
from tests.support.oauth_server import OAuthServerState, running_oauth_server

LOCAL_OAUTH = {"name": "app-oauth", "type": "OAUTH2", "authServerAlias": "local",
               "dcrConfig": {"allowedGrantTypes": ["client_credentials"], "expirationInterval": "120",
                             "refreshCount": "0"}}


@pytest.fixture
def auth_server() -> Iterator[OAuthServerState]:
    with running_oauth_server() as state:
        yield state


async def token_status(node: Node, client_id: str, secret: str) -> int:
    async with httpx.AsyncClient(base_url=node.base) as public:
        r = await public.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    return r.status_code


async def test_local_strategy_crud_and_secrets(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.post("/strategies", json=LOCAL_OAUTH)
    assert r.status_code == 200, r.text
    strategy = r.json()["strategy"]
    reg = strategy["clientRegistration"]
    assert reg["clientCredentialsAllowed"] and reg["tokenLifetime"] == 120 and reg["type"] == "confidential"
    secret = reg["clientSecret"]
    assert strategy["clientId"] == reg["clientId"]
    shown = (await sqlite_node.admin.get(f"/strategies/{strategy['id']}")).json()["strategy"]
    assert shown["clientRegistration"]["clientSecret"] == "********"
    assert secret not in (await sqlite_node.admin.get("/strategies")).text
    assert await token_status(sqlite_node, reg["clientId"], secret) == 200
    # update keeps the client and its secret
    r = await sqlite_node.admin.put(f"/strategies/{strategy['id']}", json={**LOCAL_OAUTH, "description": "d"})
    assert r.status_code == 200, r.text
    assert r.json()["strategy"]["clientRegistration"]["clientId"] == reg["clientId"]
    assert await token_status(sqlite_node, reg["clientId"], secret) == 200
    # refreshCredentials: a new secret, the old one stops working
    r = await sqlite_node.admin.put(f"/strategies/{strategy['id']}/refreshCredentials", json=LOCAL_OAUTH)
    assert r.status_code == 200, r.text
    new_secret = r.json()["strategy"]["clientRegistration"]["clientSecret"]
    assert new_secret != secret and new_secret != "********"
    assert await token_status(sqlite_node, reg["clientId"], secret) == 401
    assert await token_status(sqlite_node, reg["clientId"], new_secret) == 200
    # in use by an application: not deleted
    app = await sqlite_node.admin.post("/applications", json={"name": "A", "authStrategyIds": [strategy["id"]]})
    assert app.status_code in (200, 201), app.text
    r = await sqlite_node.admin.delete(f"/strategies/{strategy['id']}")
    assert r.status_code == 400 and "'A'" in r.json()["errorDetails"]
    assert (await sqlite_node.admin.delete(f"/applications/{app.json()['id']}")).status_code in (200, 204)
    assert (await sqlite_node.admin.delete(f"/strategies/{strategy['id']}")).status_code == 204
    assert (await sqlite_node.admin.get(f"/strategies/{strategy['id']}")).status_code == 404
    assert await token_status(sqlite_node, reg["clientId"], new_secret) == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "JWT_HSA"}, "type"),
    ({"type": "COMPOSITE"}, "type"),
    ({"type": "MAGIC"}, "type"),
    ({"authServerAlias": "nope"}, "authServerAlias"),
    ({"name": ""}, "name"),
    ({"dcrConfig": None}, "dcrConfig"),
    ({"dcrConfig": {"allowedGrantTypes": ["telepathy"]}}, "allowedGrantTypes"),
    ({"dcrConfig": {"allowedGrantTypes": ["authorization_code"]}}, "redirectUris"),
    ({"dcrConfig": {"redirectUris": ["relative/path"]}}, "redirectUris"),
    ({"dcrConfig": {"expirationInterval": "soon"}}, "expirationInterval"),
    ({"dcrConfig": {"clientType": "SECRET"}}, "clientType"),
])
async def test_bad_strategies_are_400(sqlite_node: Node, body: dict[str, Any], field: str) -> None:
    r = await sqlite_node.admin.post("/strategies", json={**LOCAL_OAUTH, **body})
    assert r.status_code == 400, r.text
    assert field in r.json()["errorDetails"]
    assert (await sqlite_node.admin.get("/strategies")).json()["strategies"] == []


async def test_names_and_client_ids_are_unique(sqlite_node: Node) -> None:
    assert (await sqlite_node.admin.post("/strategies", json=LOCAL_OAUTH)).status_code == 200
    r = await sqlite_node.admin.post("/strategies", json=LOCAL_OAUTH)
    assert r.status_code == 400 and "name" in r.json()["errorDetails"]


async def test_dynamic_client_registration_with_the_pingfederate_preset(
        sqlite_node: Node, auth_server: OAuthServerState) -> None:
    auth_server.client_id_field, auth_server.client_secret_field = "clientId", "secret"
    r = await sqlite_node.admin.post("/alias", json={
        "name": "ping", "type": "authServerAlias", "authServerType": "EXTERNAL", "providerName": "PingFederate",
        "discoveryURL": f"{auth_server.issuer}/.well-known/openid-configuration",
        "dcrEndpoint": {"clientRegistrationEndpoint": {"endpoint": "", "headers": {"X-Tenant": "t1"}},
                        "authInfo": {"type": "TOKEN", "tokenType": "SSWS", "token": "api-token"}}})
    assert r.status_code == 201, r.text
    assert r.json()["alias"]["dcrEndpoint"]["clientRegistrationEndpoint"]["endpoint"] == \
        f"{auth_server.issuer}/register"
    assert r.json()["alias"]["supportedGrantTypes"] == ["client_credentials", "authorization_code"]
    r = await sqlite_node.admin.post("/strategies", json={
        "name": "dcr", "type": "OAUTH2", "authServerAlias": "ping",
        "dcrConfig": {"allowedGrantTypes": ["authorization_code"], "redirectUris": ["https://app.example/cb"],
                      "clientName": "My App", "scopes": ["read"]}})
    assert r.status_code == 200, r.text
    reg = r.json()["strategy"]["clientRegistration"]
    (sent,) = auth_server.registrations
    body = sent["body"]
    assert sent["authorization"] == "SSWS api-token" and sent["headers"]["X-Tenant"] == "t1"
    assert body["name"] == "My App" and body["redirectUris"] == ["https://app.example/cb"]
    assert body["grantTypes"] == ["authorization_code"] and body["restrictedScopes"] == "read"
    assert body["forceSecretChange"] is True  # the preset's extended request parameter
    assert body["clientId"] == reg["clientId"] and body["secret"] == reg["clientSecret"]  # generated by Portico
    strategy_id = r.json()["strategy"]["id"]
    r = await sqlite_node.admin.put(f"/strategies/{strategy_id}/refreshCredentials", json={})
    assert r.status_code == 200, r.text
    assert auth_server.deletions == [reg["clientId"]] and len(auth_server.registrations) == 2
    new_id = r.json()["strategy"]["clientRegistration"]["clientId"]
    assert (await sqlite_node.admin.delete(f"/strategies/{strategy_id}")).status_code == 204
    assert auth_server.deletions[-1] == new_id


async def test_registration_needs_dcr_on_the_server(sqlite_node: Node, auth_server: OAuthServerState) -> None:
    r = await sqlite_node.admin.post("/alias", json={
        "name": "plain", "type": "authServerAlias", "authServerType": "EXTERNAL",
        "discoveryURL": f"{auth_server.issuer}/.well-known/openid-configuration"})
    assert r.status_code == 201, r.text
    r = await sqlite_node.admin.post("/strategies", json={**LOCAL_OAUTH, "authServerAlias": "plain"})
    assert r.status_code == 400 and "dynamic client registration" in r.json()["errorDetails"]
    r = await sqlite_node.admin.post("/strategies", json={"name": "jwt", "type": "JWT_RSA",
                                                          "authServerAlias": "plain"})
    assert r.status_code == 200, r.text


async def test_oauth_token_list_revoke_and_expired_removal(node: Node) -> None:
    local = (await node.admin.get("/alias/local")).json()["alias"]
    local["tokenGeneratorConfig"]["accessTokenExpInterval"] = 1
    assert (await node.admin.put("/alias/local", json=local)).status_code == 200
    reg = (await node.admin.post("/strategies", json={
        **LOCAL_OAUTH, "dcrConfig": {"allowedGrantTypes": ["client_credentials"]}})).json()["strategy"][
        "clientRegistration"]
    async with httpx.AsyncClient(base_url=node.base) as public:
        tokens = [(await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                     auth=(reg["clientId"], reg["clientSecret"]))).json() for _ in range(3)]
        assert all(t["expires_in"] == 1 for t in tokens)
        page = (await node.admin.get("/oauthTokens", params={"size": 2})).json()
        assert page["total"] == 3 and len(page["oauthTokens"]) == 2
        first = page["oauthTokens"][0]
        assert first["clientId"] == reg["clientId"] and first["ownerId"] == reg["clientId"]
        assert (await node.admin.delete("/oauthTokens/nope")).status_code == 404
        r = await node.admin.delete(f"/oauthTokens/{first['id']}")
        assert r.status_code == 200 and r.json()["oauthToken"]["revoked"] is True
        await asyncio.sleep(1.2)
        r = await node.admin.delete("/oauthTokens/expired")
        assert r.status_code == 200 and r.json() == {"removedTokensCount": 3}
        assert (await node.admin.get("/oauthTokens")).json()["total"] == 0
        assert (await node.admin.get("/oauthTokens", params={"size": 0})).status_code == 400


async def test_scheduled_expired_token_removal(sqlite_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_OAUTH_TOKEN_REMOVAL_INTERVAL", "0.3")
    async with running_node(sqlite_url, tmp_path / "data") as node:
        local = (await node.admin.get("/alias/local")).json()["alias"]
        local["tokenGeneratorConfig"]["accessTokenExpInterval"] = 1
        assert (await node.admin.put("/alias/local", json=local)).status_code == 200
        reg = (await node.admin.post("/strategies", json={
            **LOCAL_OAUTH, "dcrConfig": {"allowedGrantTypes": ["client_credentials"]}})).json()["strategy"][
            "clientRegistration"]
        async with httpx.AsyncClient(base_url=node.base) as public:
            await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(reg["clientId"], reg["clientSecret"]))
        assert (await node.admin.get("/oauthTokens")).json()["total"] == 1
        for _ in range(40):
            await asyncio.sleep(0.1)
            if (await node.admin.get("/oauthTokens")).json()["total"] == 0:
                break
        assert (await node.admin.get("/oauthTokens")).json()["total"] == 0
        assert node.portico.token_removal.runs > 0


async def introspect(node: Node, token: str, caller: dict[str, Any]) -> bool:
    async with httpx.AsyncClient(base_url=node.base) as public:
        r = await public.post("/oauth2/introspect", data={"token": token},
                              auth=(caller["clientId"], caller["clientSecret"]))
    assert r.status_code == 200, r.text
    return bool(r.json()["active"])


async def new_token(node: Node, reg: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=node.base) as public:
        r = await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(reg["clientId"], reg["clientSecret"]))
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


async def test_tokens_do_not_outlive_their_client(sqlite_node: Node) -> None:
    node = sqlite_node
    watcher = (await node.admin.post("/strategies", json={**LOCAL_OAUTH, "name": "watcher"})).json()["strategy"][
        "clientRegistration"]
    strategy = (await node.admin.post("/strategies", json=LOCAL_OAUTH)).json()["strategy"]
    reg = strategy["clientRegistration"]
    before = await new_token(node, reg)
    # a new secret: the tokens got with the old one stop working
    r = await node.admin.put(f"/strategies/{strategy['id']}/refreshCredentials")
    assert r.status_code == 200, r.text
    assert not await introspect(node, before, watcher)
    reg = r.json()["strategy"]["clientRegistration"]
    after = await new_token(node, reg)
    assert await introspect(node, after, watcher)
    # the client deleted: its tokens go with it
    assert (await node.admin.delete(f"/strategies/{strategy['id']}")).status_code == 204
    assert not await introspect(node, after, watcher)
    listed = (await node.admin.get("/oauthTokens", params={"clientId": reg["clientId"]})).json()["oauthTokens"]
    assert listed and all(t["revoked"] for t in listed)


async def test_applications_reference_existing_strategies_one_each(sqlite_node: Node) -> None:
    node = sqlite_node
    strategy = (await node.admin.post("/strategies", json=LOCAL_OAUTH)).json()["strategy"]
    r = await node.admin.post("/applications", json={"name": "A", "authStrategyIds": ["no-such-strategy"]})
    assert r.status_code == 400 and "no-such-strategy" in r.json()["errorDetails"]
    first = await node.admin.post("/applications", json={"name": "First", "authStrategyIds": [strategy["id"]]})
    assert first.status_code == 200, first.text
    r = await node.admin.post("/applications", json={"name": "Second", "authStrategyIds": [strategy["id"]]})
    assert r.status_code == 409 and "'First'" in r.json()["errorDetails"]
    other = (await node.admin.post("/applications", json={"name": "Other"})).json()
    r = await node.admin.put(f"/applications/{other['id']}", json={"authStrategyIds": [strategy["id"]]})
    assert r.status_code == 409
    assert (await node.admin.get(f"/applications/{other['id']}")).json()["applications"][0]["authStrategyIds"] == []
    # the owning application keeps (and may re-send) its strategy
    r = await node.admin.put(f"/applications/{first.json()['id']}", json={"name": "First",
                                                                         "authStrategyIds": [strategy["id"]]})
    assert r.status_code == 200, r.text


async def test_strategies_follow_their_applications_teams(sqlite_node: Node) -> None:
    node = sqlite_node
    for login in ("alice", "bob"):
        await add_user(node, login)
    await make_team(node, "TeamA", [priv.MANAGE_APPLICATIONS], users=["alice"])
    await make_team(node, "TeamB", [priv.MANAGE_APPLICATIONS], users=["bob"])
    await set_team_work(node, True)
    async with client(node, "alice") as alice, client(node, "bob") as bob:
        r = await alice.post("/strategies", json=LOCAL_OAUTH)
        assert r.status_code == 200, r.text
        strategy = r.json()["strategy"]
        path = f"/strategies/{strategy['id']}"
        # not yet in an application: its creator's
        assert [s["id"] for s in (await alice.get("/strategies")).json()["strategies"]] == [strategy["id"]]
        assert (await bob.get("/strategies")).json()["strategies"] == []
        r = await bob.post("/applications", json={"name": "BobsApp", "authStrategyIds": [strategy["id"]]})
        assert r.status_code == 400  # bob cannot see it, so he cannot take it either
        app = await alice.post("/applications", json={"name": "AlicesApp", "authStrategyIds": [strategy["id"]]})
        assert app.status_code == 200, app.text
        # in TeamA's application: hidden from TeamB in every way
        assert (await bob.get("/strategies")).json()["strategies"] == []
        for method, url in (("GET", path), ("PUT", path), ("DELETE", path), ("PUT", f"{path}/refreshCredentials")):
            r = await bob.request(method, url, json=LOCAL_OAUTH if method == "PUT" else None)
            assert r.status_code == 404, (method, url, r.text)
        assert (await alice.get(path)).status_code == 200
        r = await alice.put(path, json={**LOCAL_OAUTH, "description": "mine"})
        assert r.status_code == 200, r.text
    assert (await node.admin.get(path)).status_code == 200  # administrators see all


@pytest.mark.parametrize(("dcr", "field"), [
    ({"expirationInterval": "99999999999999999999999"}, "expirationInterval"),
    ({"expirationInterval": "2147483648"}, "expirationInterval"),
    ({"refreshCount": "3000000000"}, "refreshCount"),
    ({"refreshCount": 2**63}, "refreshCount"),
    ({"redirectUris": ["javascript:alert(1)"]}, "redirectUris"),
    ({"redirectUris": ["data:text/html,hi"]}, "redirectUris"),
    ({"redirectUris": ["com.example.app:/cb"]}, "NATIVE"),
    ({"redirectUris": ["https://ok.example/cb#frag"]}, "fragment"),
])
async def test_bad_numbers_and_redirect_uris_are_400(node: Node, dcr: dict[str, Any], field: str) -> None:
    body = {**LOCAL_OAUTH, "dcrConfig": {"allowedGrantTypes": ["client_credentials", "authorization_code",
                                                                "refresh_token"],
                                         "redirectUris": ["https://app.example/cb"], **dcr}}
    r = await node.admin.post("/strategies", json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["errorDetails"]
    r = await node.admin.get("/strategies")
    assert r.status_code == 200 and r.json()["strategies"] == []


async def test_native_apps_may_use_private_schemes(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.post("/strategies", json={**LOCAL_OAUTH, "dcrConfig": {
        "allowedGrantTypes": ["authorization_code"], "applicationType": "NATIVE", "clientType": "PUBLIC",
        "redirectUris": ["com.example.app:/oauth2/callback"], "refreshCount": "2147483647"}})
    assert r.status_code == 200, r.text


async def test_dcr_secrets_errors_and_lifecycle(sqlite_node: Node, auth_server: OAuthServerState,
                                                caplog: pytest.LogCaptureFixture) -> None:
    node = sqlite_node
    r = await node.admin.post("/alias", json={
        "name": "okta", "type": "authServerAlias", "authServerType": "EXTERNAL", "providerName": "OKTA",
        "discoveryURL": f"{auth_server.issuer}/.well-known/openid-configuration",
        "dcrEndpoint": {"clientRegistrationEndpoint": {"endpoint": "", "headers": {"X-Api-Key": "header-secret"}},
                        "authInfo": {"type": "CLIENT_CREDENTIALS", "clientId": "registrar",
                                     "clientSecret": "registrar-secret"}}})
    assert r.status_code == 201, r.text
    alias = r.json()["alias"]
    # header values are secrets: masked in answers, sealed at rest, sent in full
    assert alias["dcrEndpoint"]["clientRegistrationEndpoint"]["headers"] == {"X-Api-Key": "********"}
    assert "header-secret" not in (await node.admin.get(f"/alias/{alias['id']}")).text
    async with node.portico.store.read() as tx:
        assert "header-secret" not in str((await tx.get("alias", alias["id"])).body)  # type: ignore[union-attr]
    r = await node.admin.put(f"/alias/{alias['id']}", json=alias)  # sent back masked: kept
    assert r.status_code == 200, r.text
    dcr = {"allowedGrantTypes": ["authorization_code"], "redirectUris": ["https://app.example/cb"]}
    r = await node.admin.post("/strategies", json={"name": "reg", "type": "OAUTH2", "authServerAlias": "okta",
                                                   "dcrConfig": dcr})
    assert r.status_code == 200, r.text
    strategy = r.json()["strategy"]
    first_id = strategy["clientRegistration"]["clientId"]
    sent = auth_server.registrations[-1]
    assert sent["headers"]["X-Api-Key"] == "header-secret" and sent["authorization"] == "Bearer registrar-token"
    # a change of the registered metadata reaches the server
    changed = {**dcr, "redirectUris": ["https://app.example/new"]}
    r = await node.admin.put(f"/strategies/{strategy['id']}", json={**strategy, "dcrConfig": changed})
    assert r.status_code == 200, r.text
    assert auth_server.updates[-1][0] == first_id
    assert auth_server.updates[-1][1]["redirect_uris"] == ["https://app.example/new"]
    # new credentials are stored even if the old client cannot be deleted there (logged)
    auth_server.delete_status = 500
    r = await node.admin.put(f"/strategies/{strategy['id']}/refreshCredentials")
    assert r.status_code == 200, r.text
    second_id = r.json()["strategy"]["clientRegistration"]["clientId"]
    assert second_id != first_id and auth_server.deletions == [first_id]
    assert (await node.admin.get(f"/strategies/{strategy['id']}")).json()["strategy"]["clientRegistration"][
        "clientId"] == second_id
    assert any(first_id in rec.getMessage() for rec in caplog.records)
    # errors say the status, never the remote body
    auth_server.registration_error = (400, b"<html>internal-detail-xyz</html>")
    r = await node.admin.post("/strategies", json={"name": "reg2", "type": "OAUTH2", "authServerAlias": "okta",
                                                   "dcrConfig": dcr})
    assert r.status_code == 400 and "400" in r.json()["errorDetails"]
    assert "internal-detail-xyz" not in r.text
    auth_server.registration_error = None
    for answer in (b"<html>not json</html>", b"[1, 2]", b'{"token_type": "Bearer"}'):
        auth_server.token_answer = answer
        r = await node.admin.post("/strategies", json={"name": "reg3", "type": "OAUTH2", "authServerAlias": "okta",
                                                       "dcrConfig": dcr})
        assert r.status_code == 400 and "access_token" in r.json()["errorDetails"], r.text
