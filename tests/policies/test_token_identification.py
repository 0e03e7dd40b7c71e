"""evaluatePolicy's token rules through the gateway (issue 5): jwtClaims, oAuth2Token and
openIdConnect with real tokens from Portico's own endpoints and from a small external OAuth2
server; AND/OR with an API key; malformed, expired, not-yet-valid, ``none`` and HS/RS-confused
tokens; wrong audience; scope mappings (403) and the /scopes API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from tests.gateway.test_runtime import add_action, key_of, new_app, rules
from tests.support.node import ADMIN, Node
from tests.support.oauth_server import OAuthServerState, running_oauth_server
from tests.support.upstream import Upstream, spec_for


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str = "none", secret: bytes = b"") -> str:
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    if alg == "none":
        return f"{head}.{body}."
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def local_client(node: Node, name: str = "cc") -> tuple[dict[str, Any], str]:
    r = await node.admin.post("/strategies", json={"name": name, "type": "OAUTH2", "authServerAlias": "local",
                                                   "dcrConfig": {"allowedGrantTypes": ["client_credentials"]}})
    assert r.status_code == 200, r.text
    strategy = r.json()["strategy"]
    return strategy["clientRegistration"], strategy["id"]


async def access_token(node: Node, reg: dict[str, Any], scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    async with httpx.AsyncClient(base_url=node.base) as public:
        r = await public.post("/oauth2/token", data=form, auth=(reg["clientId"], reg["clientSecret"]))
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


async def external(node: Node, ext: OAuthServerState) -> None:
    r = await node.admin.post("/alias", json={
        "name": "ext", "type": "authServerAlias", "authServerType": "EXTERNAL", "audience": "portico-tests",
        "localIntrospectionConfig": {"issuer": ext.issuer, "jwksuri": f"{ext.issuer}/jwks"}})
    assert r.status_code == 201, r.text
    await node.reload()


async def test_oauth2_token_identifies_the_strategy_application(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    reg, sid = await local_client(node)
    await new_app(node, [api["id"]], name="oauth-app", authStrategyIds=[sid])
    token = await access_token(node, reg)
    ok = await node.gw.get("/Echo/1.0/echo", headers=bearer(token))
    assert ok.status_code == 200, ok.text
    assert (await node.gw.get("/Echo/1.0/echo")).status_code == 403  # no token: not identified
    bad = await node.gw.get("/Echo/1.0/echo", headers=bearer("made-up"))
    assert bad.status_code == 401 and "cannot be authenticated" in bad.json()["Exception"]
    assert bad.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    # a client whose application is not registered to the API (strict lookup): 403
    other_reg, other_sid = await local_client(node, "other")
    await new_app(node, [], name="unregistered", authStrategyIds=[other_sid])
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(await access_token(node, other_reg)))).status_code == 403


async def test_jwt_claims_match_mismatch_and_and_or_with_api_key(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("jwtClaims"))
    app = await new_app(node, [api["id"]], name="claims", identifiers=[
        {"key": "jwtClaims", "name": "admin", "value": ['{"sub": "Administrator"}']}])
    async with httpx.AsyncClient(base_url=node.base) as public:
        jwt = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(jwt))).status_code == 200
    # mismatch: the claim set names someone else
    assert (await node.admin.delete(f"/applications/{app['id']}")).status_code in (200, 204)
    await new_app(node, [api["id"]], name="other", identifiers=[
        {"key": "jwtClaims", "name": "other", "value": ['{"sub": "Administrator", "tenant": "t1"}']}])
    missing = await node.gw.get("/Echo/1.0/echo", headers=bearer(jwt))
    assert missing.status_code == 403 and "Unable to identify" in missing.json()["Exception"]
    app = await new_app(node, [api["id"]], name="claims", identifiers=[
        {"key": "jwtClaims", "name": "admin", "value": ['{"sub": "Administrator"}']}])
    # AND with the API key: both must identify the same application
    await add_action(node, api, "evaluatePolicy", "IAM", rules("jwtClaims", "apiKey", connector="AND"))
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(jwt))).status_code == 403
    both = {**bearer(jwt), "x-gateway-apikey": key_of(app)}
    assert (await node.gw.get("/Echo/1.0/echo", headers=both)).status_code == 200
    stranger = await new_app(node, [api["id"]], name="stranger")
    mixed = {**bearer(jwt), "x-gateway-apikey": key_of(stranger)}
    assert (await node.gw.get("/Echo/1.0/echo", headers=mixed)).status_code == 403
    # OR: either one alone
    await add_action(node, api, "evaluatePolicy", "IAM", rules("jwtClaims", "apiKey", connector="OR"))
    assert (await node.gw.get("/Echo/1.0/echo", headers={"x-gateway-apikey": key_of(stranger)})).status_code == 200
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(jwt))).status_code == 200


async def test_bad_tokens_are_refused_with_their_reason(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("jwtClaims"))
    with running_oauth_server() as ext:
        await external(node, ext)
        await new_app(node, [api["id"]], name="ext", identifiers=[
            {"key": "jwtClaims", "name": "c", "value": ['{"client_id": "ext-client"}']}])
        now = int(time.time())
        assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(ext.sign()))).status_code == 200
        public_pem = ext.keys[0].as_pem(private=False)
        claims = {"iss": ext.issuer, "sub": "x", "aud": "portico-tests", "exp": now + 300, "client_id": "ext-client"}
        cases = {
            "TOKEN_EXPIRED": ext.sign(exp=now - 3600, iat=now - 7200),
            "TOKEN_NOT_YET_VALID": ext.sign(nbf=now + 3600),
            "TOKEN_AUDIENCE": ext.sign(aud="someone-else"),
            "TOKEN_SIGNATURE": ext.sign(key=ext.new_key(), kid=ext.keys[0].thumbprint()),
            "TOKEN_ALGORITHM": unsigned(claims),  # alg none
            "TOKEN_ALGORITHM_HS": unsigned(claims, "HS256", public_pem),  # HS256 keyed with the public key
        }
        for expected, token in cases.items():
            r = await node.gw.get("/Echo/1.0/echo", headers=bearer(token))
            assert r.status_code == 401, (expected, r.text)
            assert "cannot be authenticated" in r.json()["Exception"]
        for junk in ("a.b.c", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9.e30"):
            assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(junk))).status_code in (401, 403)
        # a token of an issuer nobody configured
        stranger = unsigned({**claims, "iss": "https://elsewhere.example"}, "HS256", b"k")
        assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(stranger))).status_code == 401


async def test_openid_id_token_is_the_credential(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("openIdConnect"))
    r = await node.admin.post("/strategies", json={
        "name": "oidc", "type": "OPENID_CONNECT_RSA", "authServerAlias": "local",
        "dcrConfig": {"allowedGrantTypes": ["authorization_code", "client_credentials"],
                      "redirectUris": ["https://app.example/cb"]}})
    assert r.status_code == 200, r.text
    strategy = r.json()["strategy"]
    reg = strategy["clientRegistration"]
    await new_app(node, [api["id"]], name="oidc-app", authStrategyIds=[strategy["id"]])
    async with httpx.AsyncClient(base_url=node.base, follow_redirects=False) as public:
        r = await public.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": reg["clientId"], "redirect_uri": "https://app.example/cb",
            "scope": "openid"}, auth=ADMIN)
        code = httpx.URL(r.headers["location"]).params["code"]
        tokens = (await public.post("/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.example/cb"},
            auth=(reg["clientId"], reg["clientSecret"]))).json()
    ok = await node.gw.get("/Echo/1.0/echo", headers=bearer(tokens["id_token"]))
    assert ok.status_code == 200, ok.text
    # the access token is not an ID token
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(tokens["access_token"]))).status_code == 401
    # and an ID token is no access token for oAuth2Token / jwtClaims
    await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(tokens["id_token"]))).status_code == 401


async def test_scope_mappings_enforced_for_oauth2_tokens(node: Node, upstream: Upstream) -> None:
    local = (await node.admin.get("/alias/local")).json()["alias"]
    local["scopes"] = [{"name": "read", "description": "r"}, {"name": "write", "description": "w"}]
    r = await node.admin.put("/alias/local", json=local)
    assert r.status_code == 200, r.text
    spec = spec_for(upstream.url)
    api = await node.create_api(spec)
    await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    reg, sid = await local_client(node)
    await new_app(node, [api["id"]], name="scoped", authStrategyIds=[sid])
    read = await access_token(node, reg, "read")
    write = await access_token(node, reg, "write")
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(read))).status_code == 200  # no mapping yet
    mapping = {"scopeName": "writers", "scopeDescription": "d", "apiScopes": [api["id"]],
               "requiredAuthScopes": [{"authServerAlias": "local", "scopeName": "write"}]}
    r = await node.admin.post("/scopes", json=mapping)
    assert r.status_code == 201, r.text
    scope_id = r.json()["scope"]["id"]
    await node.reload()
    denied = await node.gw.get("/Echo/1.0/echo", headers=bearer(read))
    assert denied.status_code == 403 and "scope" in denied.json()["Exception"]
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(write))).status_code == 200
    # the mapping's audience must be in the token
    r = await node.admin.put(f"/scopes/{scope_id}", json={**mapping, "audience": "elsewhere"})
    assert r.status_code == 200, r.text
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(write))).status_code == 403
    # listing, reading, deleting
    listed = (await node.admin.get("/scopes")).json()["scopes"]
    assert [s["scopeName"] for s in listed] == ["writers"]
    assert (await node.admin.get(f"/scopes/{scope_id}")).json()["scope"]["audience"] == "elsewhere"
    assert (await node.admin.delete(f"/scopes/{scope_id}")).status_code == 204
    assert (await node.admin.get(f"/scopes/{scope_id}")).status_code == 404
    await node.reload()
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(read))).status_code == 200


async def test_scope_mapping_bad_input(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    good = {"scopeName": "m", "apiScopes": [api["id"]],
            "requiredAuthScopes": [{"authServerAlias": "local", "scopeName": "anything"}]}
    for body, words in [
        ({**good, "scopeName": ""}, "scopeName"),
        ({**good, "apiScopes": []}, "apiScopes"),
        ({**good, "apiScopes": ["no-such-api"]}, "no-such-api"),
        ({**good, "apiScopes": [f"{api['id']}:nope"]}, "nope"),
        ({**good, "requiredAuthScopes": []}, "requiredAuthScopes"),
        ({**good, "requiredAuthScopes": [{"authServerAlias": "ghost", "scopeName": "x"}]}, "ghost"),
        ({**good, "bogus": 1}, "bogus"),
    ]:
        r = await node.admin.post("/scopes", json=body)
        assert r.status_code == 400 and words in r.json()["errorDetails"], (body, r.text)
    assert (await node.admin.get("/scopes")).json()["scopes"] == []
    assert (await node.admin.post("/scopes", json=good)).status_code == 201
    assert (await node.admin.post("/scopes", json=good)).status_code == 400  # the same name again


async def test_default_scopes_created_with_each_api_when_enabled(node: Node, upstream: Upstream) -> None:
    local = (await node.admin.get("/alias/local")).json()["alias"]
    local["scopes"] = [{"name": "read", "description": "r"}]
    assert (await node.admin.put("/alias/local", json=local)).status_code == 200
    settings = {"extendedKeys": {"pg_oauth2_createDefaultScopes": "true"}}
    r = await node.admin.put("/configurations/settings", json=settings)
    assert r.status_code == 200, r.text
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    (mapping,) = (await node.admin.get("/scopes")).json()["scopes"]
    assert mapping["apiScopes"] == [api["id"]]
    assert mapping["requiredAuthScopes"] == [{"authServerAlias": "local", "scopeName": "Echo_1.0"}]
    scopes = [s["name"] for s in (await node.admin.get("/alias/local")).json()["alias"]["scopes"]]
    assert scopes == ["read", "Echo_1.0"]
    reg, sid = await local_client(node)
    await new_app(node, [api["id"]], name="scoped", authStrategyIds=[sid])
    await node.reload()
    read = await access_token(node, reg, "read")
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(read))).status_code == 403
    allowed = await access_token(node, reg, "Echo_1.0")
    assert (await node.gw.get("/Echo/1.0/echo", headers=bearer(allowed))).status_code == 200
    # deleting the API takes its mapping along
    assert (await node.admin.put(f"/apis/{api['id']}/deactivate")).status_code == 200
    r = await node.admin.delete(f"/apis/{api['id']}", params={"forceDelete": "true"})
    assert r.status_code in (200, 204), r.text
    assert (await node.admin.get("/scopes")).json()["scopes"] == []


async def test_no_default_scope_by_default(node: Node, upstream: Upstream) -> None:
    await node.create_api(spec_for(upstream.url))
    assert (await node.admin.get("/scopes")).json()["scopes"] == []
