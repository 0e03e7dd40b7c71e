"""The ``oauth`` snapshot part: local opaque tokens and local JWTs mapped to the applications whose
strategies hold the client, revocation seen, validators kept across unrelated configuration changes;
ID tokens kept apart from access tokens, audiences enforced, tokens shown only to their issuer."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from portico.oauth.runtime import EXTRAS, OAuthView
from portico.oauth.validate import TokenError
from tests.support.node import ADMIN, Node
from tests.support.oauth_server import INTROSPECTOR, running_oauth_server


def view_of(node: Node) -> OAuthView:
    assert node.portico.gateway is not None
    view: OAuthView = node.portico.gateway.snapshot.extras[EXTRAS]
    return view


async def test_local_tokens_identify_applications(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.post("/strategies", json={"name": "s", "type": "OAUTH2", "authServerAlias": "local",
                                                          "dcrConfig": {"allowedGrantTypes": ["client_credentials"]}})
    strategy = r.json()["strategy"]
    reg = strategy["clientRegistration"]
    app = (await sqlite_node.admin.post("/applications", json={"name": "App",
                                                                "authStrategyIds": [strategy["id"]]})).json()
    await sqlite_node.reload()
    async with httpx.AsyncClient(base_url=sqlite_node.base) as public:
        token = (await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                   auth=(reg["clientId"], reg["clientSecret"]))).json()["access_token"]
        jwt = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        identified = await view_of(sqlite_node).identify_oauth2(token)
        assert identified.server == "local" and identified.application_ids == (app["id"],)
        assert identified.token.client_id == reg["clientId"]
        server, verified = await view_of(sqlite_node).verify_jwt(jwt)
        assert server.name == "local" and verified.subject == "Administrator"
        with pytest.raises(TokenError) as err:
            await view_of(sqlite_node).identify_oauth2("not-a-token")
        assert err.value.key == "inactive"
        # an unrelated change keeps the same verifier (and its cache)
        before = view_of(sqlite_node).servers["local"].verifier
        await sqlite_node.admin.post("/alias", json={"name": "x", "type": "simple", "value": "1"})
        await sqlite_node.reload()
        assert view_of(sqlite_node).servers["local"].verifier is before
        # revocation is seen once the short lookup cache has passed
        fresh = (await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                   auth=(reg["clientId"], reg["clientSecret"]))).json()["access_token"]
        await public.post("/oauth2/revoke", data={"token": fresh}, auth=(reg["clientId"], reg["clientSecret"]))
        with pytest.raises(TokenError):
            await view_of(sqlite_node).identify_oauth2(fresh)


REDIRECT = "https://app.example/cb"


async def _oidc_app(node: Node, name: str = "oidc", audience: str = "") -> tuple[dict[str, Any], str]:
    r = await node.admin.post("/strategies", json={
        "name": name, "type": "OPENID_CONNECT_RSA", "authServerAlias": "local", "audience": audience,
        "dcrConfig": {"allowedGrantTypes": ["authorization_code", "client_credentials", "refresh_token"],
                      "redirectUris": [REDIRECT], "refreshCount": "3"}})
    assert r.status_code == 200, r.text
    strategy = r.json()["strategy"]
    app = await node.admin.post("/applications", json={"name": f"App-{name}", "authStrategyIds": [strategy["id"]]})
    assert app.status_code == 200, app.text
    await node.reload()
    return strategy["clientRegistration"], app.json()["id"]


async def _code_flow(public: httpx.AsyncClient, reg: dict[str, Any]) -> dict[str, Any]:
    r = await public.get("/oauth2/authorize", params={"response_type": "code", "client_id": reg["clientId"],
                                                      "redirect_uri": REDIRECT, "scope": "openid"}, auth=ADMIN)
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": REDIRECT},
                          auth=(reg["clientId"], reg["clientSecret"]))
    assert r.status_code == 200, r.text
    tokens: dict[str, Any] = r.json()
    return tokens


async def _token_error(call: Awaitable[object]) -> str:
    with pytest.raises(TokenError) as err:
        await call
    return err.value.key


async def test_id_tokens_are_not_access_tokens(sqlite_node: Node) -> None:
    reg, app_id = await _oidc_app(sqlite_node)
    view = view_of(sqlite_node)
    async with httpx.AsyncClient(base_url=sqlite_node.base, follow_redirects=False) as public:
        first = await _code_flow(public, reg)
        # the ID token proves a login to the client: it is no access token, opaque or JWT
        assert await _token_error(view.identify_oauth2(first["id_token"])) == "token_type"
        assert await _token_error(view.verify_jwt(first["id_token"])) == "token_type"
        assert (await view.identify_oauth2(first["access_token"])).application_ids == (app_id,)
        # for OpenID identification it names the client's application
        assert (await view.identify_id_token(first["id_token"])).application_ids == (app_id,)
        # a JWT access token (getJsonWebToken) is one, and is not an ID token
        jwt = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        assert (await view.verify_jwt(jwt))[1].typ == "at+jwt"
        assert await _token_error(view.identify_id_token(jwt)) == "token_type"
        # revoking a grant ends its ID token's use too
        second = await _code_flow(public, reg)
        r = await public.post("/oauth2/revoke", data={"token": second["refresh_token"]},
                              auth=(reg["clientId"], reg["clientSecret"]))
        assert r.status_code == 200
        assert await _token_error(view.identify_id_token(second["id_token"])) == "inactive"
        assert await _token_error(view.identify_oauth2(second["access_token"])) == "inactive"


async def test_audiences_are_enforced(sqlite_node: Node) -> None:
    node = sqlite_node
    local = (await node.admin.get("/alias/local")).json()["alias"]
    local["tokenGeneratorConfig"]["audience"] = "apis-a"
    assert (await node.admin.put("/alias/local", json=local)).status_code == 200
    async with httpx.AsyncClient(base_url=node.base) as public:
        jwt_a = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        await node.reload()
        assert (await view_of(node).verify_jwt(jwt_a))[1].claims["aud"] == "apis-a"
        local["tokenGeneratorConfig"]["audience"] = "apis-b"
        assert (await node.admin.put("/alias/local", json=local)).status_code == 200
        await node.reload()
        assert await _token_error(view_of(node).verify_jwt(jwt_a)) == "audience"
        # a strategy's audience: its application is identified only by tokens meant for it
        reg_b, app_b = await _oidc_app(node, "for-b", audience="apis-b")
        reg_x, _ = await _oidc_app(node, "for-x", audience="apis-x")
        tokens = {}
        for reg in (reg_b, reg_x):
            tokens[reg["clientId"]] = (await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                                         auth=(reg["clientId"], reg["clientSecret"]))).json()
        view = view_of(node)
        assert (await view.identify_oauth2(tokens[reg_b["clientId"]]["access_token"])).application_ids == (app_b,)
        assert (await view.identify_oauth2(tokens[reg_x["clientId"]]["access_token"])).application_ids == ()


async def test_external_audience(sqlite_node: Node) -> None:
    with running_oauth_server() as ext:
        r = await sqlite_node.admin.post("/alias", json={
            "name": "ext", "type": "authServerAlias", "authServerType": "EXTERNAL", "audience": "portico-tests",
            "localIntrospectionConfig": {"issuer": ext.issuer, "jwksuri": f"{ext.issuer}/jwks"}})
        assert r.status_code == 201, r.text
        assert r.json()["alias"]["audience"] == "portico-tests"
        await sqlite_node.reload()
        view = view_of(sqlite_node)
        assert (await view.verify_jwt(ext.sign()))[0].name == "ext"  # aud portico-tests
        assert await _token_error(view.verify_jwt(ext.sign(aud="someone-else"))) == "audience"
        assert await _token_error(view.verify_jwt(ext.sign(aud=None))) == "audience"
        # an ID token of that server (it carries a nonce) is refused for API access...
        assert await _token_error(view.verify_jwt(ext.sign(nonce="n"))) == "token_type"
        # ...and identifies, by its client audience, the application of an OpenID strategy
        r = await sqlite_node.admin.post("/strategies", json={"name": "web", "type": "OPENID_CONNECT_RSA",
                                                              "authServerAlias": "ext", "clientId": "web-client"})
        assert r.status_code == 200, r.text
        app = await sqlite_node.admin.post("/applications", json={"name": "Web",
                                                                  "authStrategyIds": [r.json()["strategy"]["id"]]})
        await sqlite_node.reload()
        id_token = ext.sign(aud="web-client", nonce="n")
        assert (await view_of(sqlite_node).identify_id_token(id_token)).application_ids == (app.json()["id"],)
        assert await _token_error(view_of(sqlite_node).verify_jwt(id_token)) in ("audience", "token_type")


async def test_tokens_go_only_to_the_server_that_can_know_them(sqlite_node: Node) -> None:
    """A JWT goes to its issuer only (an unknown issuer to nobody); an opaque token to the servers
    an application's strategy uses (or those named), and a negative answer is remembered."""
    node = sqlite_node
    with running_oauth_server() as s1, running_oauth_server() as s2:
        for name, state in (("s1", s1), ("s2", s2)):
            r = await node.admin.post("/alias", json={
                "name": name, "type": "authServerAlias", "authServerType": "EXTERNAL",
                "localIntrospectionConfig": {"issuer": state.issuer},
                "remoteIntrospectionConfig": {"introspectionEndpoint": f"{state.issuer}/introspect",
                                              "clientId": INTROSPECTOR[0], "clientSecret": INTROSPECTOR[1]}})
            assert r.status_code == 201, r.text
        r = await node.admin.post("/strategies", json={"name": "on-s1", "type": "OAUTH2", "authServerAlias": "s1",
                                                       "clientId": "ext-client"})
        strategy_id = r.json()["strategy"]["id"]
        app = await node.admin.post("/applications", json={"name": "A", "authStrategyIds": [strategy_id]})
        await node.reload()
        view = view_of(node)
        stranger = s1.sign(iss="https://nobody.example")
        assert await _token_error(view.identify_oauth2(stranger)) == "issuer"
        assert s1.introspections == [] and s2.introspections == []
        good = s1.issue_opaque("ext-client")
        assert (await view.identify_oauth2(good)).application_ids == (app.json()["id"],)
        assert await _token_error(view.identify_oauth2("made-up")) == "inactive"
        assert await _token_error(view.identify_oauth2("made-up")) == "inactive"  # remembered
        assert s1.introspections == [good, "made-up"] and s2.introspections == []
        # the caller may name the servers; a JWT of a server without JWKS goes to its introspection
        assert await _token_error(view.identify_oauth2("other", servers=["s2"])) == "inactive"
        assert s2.introspections == ["other"]
        jwt = s2.sign()
        assert await _token_error(view.identify_oauth2(jwt)) == "inactive"
        assert s2.introspections[-1] == jwt and len(s1.introspections) == 2
