"""``/strategies``: local clients with generated credentials, refreshCredentials, dynamic client
registration at an external server through a provider's field mapping, and the OAuth token list."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

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
