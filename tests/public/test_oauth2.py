"""The local authorization server end to end over HTTP: every grant, PKCE, ID tokens checked
against the JWKS, introspection, revocation, discovery, the reference's paths and error shapes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from portico.oauth.validate import JwtVerifier, StaticKeys, TokenError, import_jwks
from tests.support.node import ADMIN, Node

REDIRECT = "https://app.example/callback"


@pytest.fixture
async def public(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.base, timeout=30, follow_redirects=False) as client:
        yield client


async def make_strategy(node: Node, name: str = "cc", **dcr: Any) -> dict[str, Any]:
    config = {"allowedGrantTypes": ["client_credentials", "authorization_code", "refresh_token"],
              "redirectUris": [REDIRECT], **dcr}
    r = await node.admin.post("/strategies", json={"name": name, "type": "OAUTH2", "authServerAlias": "local",
                                                   "dcrConfig": config})
    assert r.status_code == 200, r.text
    registration: dict[str, Any] = r.json()["strategy"]["clientRegistration"]
    return registration


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def authorize(public: httpx.AsyncClient, client_id: str, **params: str) -> dict[str, list[str]]:
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "xyz", **params}
    r = await public.get("/oauth2/authorize", params=query, auth=ADMIN)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def test_client_credentials_at_the_reference_path(node: Node, public: httpx.AsyncClient) -> None:
    client = await make_strategy(node)
    r = await public.post("/invoke/pub.apigateway.oauth2/getAccessToken", json={"grant_type": "client_credentials"},
                          auth=(client["clientId"], client["clientSecret"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and "refresh_token" not in body
    assert r.headers["cache-control"] == "no-store"
    # client_secret_post works too, at the standard path
    r = await public.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": client["clientId"],
                                                 "client_secret": client["clientSecret"]})
    assert r.status_code == 200, r.text
    # the tokens are listed (hashed; no secret in the list)
    listed = (await node.admin.get("/oauthTokens", params={"clientId": client["clientId"]})).json()
    assert listed["total"] == 2 and body["access_token"] not in str(listed)


@pytest.mark.parametrize(("auth", "form", "status", "error"), [
    (None, {"grant_type": "client_credentials"}, 401, "invalid_client"),
    (("nobody", "x"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
    ("wrong-secret", {"grant_type": "client_credentials"}, 401, "invalid_client"),
    ("good", {}, 400, "invalid_request"),
    ("good", {"grant_type": "password", "username": "a", "password": "b"}, 400, "unsupported_grant_type"),
    ("good", {"grant_type": "client_credentials", "scope": "admin"}, 400, "invalid_scope"),
    ("good", {"grant_type": "authorization_code", "code": "made-up"}, 400, "invalid_grant"),
    ("good", {"grant_type": "refresh_token", "refresh_token": "made-up"}, 400, "invalid_grant"),
])
async def test_token_endpoint_errors(node: Node, public: httpx.AsyncClient, auth: Any, form: dict[str, str],
                                     status: int, error: str) -> None:
    client = await make_strategy(node)
    if auth == "good":
        auth = (client["clientId"], client["clientSecret"])
    elif auth == "wrong-secret":
        auth = (client["clientId"], "nope")
    r = await public.post("/oauth2/token", data=form, auth=auth)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and r.json()["error_description"]
    if status == 401 and auth is not None:
        assert "www-authenticate" in r.headers


async def test_a_client_without_the_grant_is_refused(node: Node, public: httpx.AsyncClient) -> None:
    client = await make_strategy(node, allowedGrantTypes=["authorization_code"])
    r = await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(client["clientId"], client["clientSecret"]))
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


async def test_authorization_code_with_pkce_refresh_and_id_token(node: Node, public: httpx.AsyncClient) -> None:
    client = await make_strategy(node, refreshCount="2")
    verifier = secrets.token_urlsafe(48)
    params = await authorize(public, client["clientId"], scope="openid", nonce="n-1",
                             code_challenge=_challenge(verifier), code_challenge_method="S256")
    assert params["state"] == ["xyz"]
    code = params["code"][0]
    auth = (client["clientId"], client["clientSecret"])
    wrong = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": REDIRECT, "code_verifier": "x" * 43}, auth=auth)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # the code was consumed by the failed attempt (single use): authorize again
    code = (await authorize(public, client["clientId"], scope="openid", nonce="n-1",
                            code_challenge=_challenge(verifier), code_challenge_method="S256"))["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": REDIRECT, "code_verifier": verifier}, auth=auth)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["scope"] == "openid" and tokens["refresh_token"]
    again = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                     "code_verifier": verifier}, auth=auth)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # the ID token verifies against the published JWKS and names the user and the client
    jwks = (await public.get("/oauth2/jwks")).json()
    issuer = (await public.get("/.well-known/openid-configuration")).json()["issuer"]
    id_verifier = JwtVerifier(issuer=issuer, keys=StaticKeys(import_jwks(jwks)), audience=client["clientId"])
    claims = (await id_verifier.verify(tokens["id_token"])).claims
    assert claims["sub"] == "Administrator" and claims["nonce"] == "n-1" and claims["at_hash"]
    # refresh: rotated each time, down to the remaining count
    listed = (await node.admin.get("/oauthTokens", params={"clientId": client["clientId"]})).json()["oauthTokens"]
    assert listed[0]["remainingRefreshCount"] == 2 and listed[0]["ownerId"] == "Administrator"
    r = await public.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                 "refresh_token": tokens["refresh_token"]}, auth=auth)
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["access_token"] != tokens["access_token"] and second["refresh_token"]
    r = await public.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                 "refresh_token": second["refresh_token"]}, auth=auth)
    assert r.status_code == 200 and "refresh_token" not in r.json()  # no refreshes left
    third = r.json()
    old = await public.post("/oauth2/introspect", data={"token": tokens["access_token"]}, auth=auth)
    assert old.json() == {"active": False}
    assert (await public.post("/oauth2/introspect", data={"token": third["access_token"]}, auth=auth)).json()[
        "active"] is True
    # a rotated-out refresh token presented again: someone else holds the grant, so it is revoked
    reused = await public.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                      "refresh_token": tokens["refresh_token"]}, auth=auth)
    assert reused.status_code == 400 and "already used" in reused.json()["error_description"]
    assert (await public.post("/oauth2/introspect", data={"token": third["access_token"]}, auth=auth)).json() == {
        "active": False}


async def test_pkce_plain_and_enforcement(node: Node, public: httpx.AsyncClient) -> None:
    client = await make_strategy(node, pkceType="ENFORCED")
    auth = (client["clientId"], client["clientSecret"])
    query = {"response_type": "code", "client_id": client["clientId"], "redirect_uri": REDIRECT}
    r = await public.get("/oauth2/authorize", params=query, auth=ADMIN)
    assert r.status_code == 302 and "error=invalid_request" in r.headers["location"]
    # enforced PKCE means S256: the message says so and plain is refused accordingly
    verifier = secrets.token_urlsafe(40)
    r = await public.get("/oauth2/authorize", params={**query, "code_challenge": verifier,
                                                      "code_challenge_method": "plain"}, auth=ADMIN)
    refused = parse_qs(urlsplit(r.headers["location"]).query)
    assert refused["error"] == ["invalid_request"] and "S256" in refused["error_description"][0]
    code = (await authorize(public, client["clientId"], code_challenge=_challenge(verifier),
                            code_challenge_method="S256"))["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": REDIRECT, "code_verifier": verifier}, auth=auth)
    assert r.status_code == 200, r.text
    # where PKCE is optional, plain still works
    optional = await make_strategy(node, name="optional")
    code = (await authorize(public, optional["clientId"], code_challenge=verifier,
                            code_challenge_method="plain"))["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": REDIRECT, "code_verifier": verifier},
                          auth=(optional["clientId"], optional["clientSecret"]))
    assert r.status_code == 200, r.text


async def test_public_client_with_global_pkce(node: Node, public: httpx.AsyncClient) -> None:
    local = (await node.admin.get("/alias/local")).json()["alias"]
    local["tokenGeneratorConfig"]["enforcePKCE"] = True
    assert (await node.admin.put("/alias/local", json=local)).status_code == 200
    client = await make_strategy(node, clientType="PUBLIC", allowedGrantTypes=["authorization_code"])
    assert "clientSecret" not in client
    r = await public.get("/invoke/pub.apigateway.oauth2/authorize", auth=ADMIN, params={
        "response_type": "code", "client_id": client["clientId"], "redirect_uri": REDIRECT})
    assert r.status_code == 302 and "PKCE" in parse_qs(urlsplit(r.headers["location"]).query)["error_description"][0]
    verifier = secrets.token_urlsafe(40)
    code = (await authorize(public, client["clientId"], code_challenge=_challenge(verifier),
                            code_challenge_method="S256"))["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "client_id": client["clientId"], "redirect_uri": REDIRECT,
                                                 "code_verifier": verifier})
    assert r.status_code == 200, r.text


async def test_authorize_refuses_unknown_clients_and_redirects_without_redirecting(
        node: Node, public: httpx.AsyncClient) -> None:
    client = await make_strategy(node)
    r = await public.get("/oauth2/authorize", params={"response_type": "code", "client_id": "nobody"}, auth=ADMIN)
    assert r.status_code == 400
    r = await public.get("/oauth2/authorize", params={"response_type": "code", "client_id": client["clientId"],
                                                      "redirect_uri": "https://evil.example/"}, auth=ADMIN)
    assert r.status_code == 400 and "location" not in r.headers
    # the resource owner must authenticate
    r = await public.get("/oauth2/authorize", params={"response_type": "code", "client_id": client["clientId"]})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    r = await public.get("/oauth2/authorize", params={"response_type": "code", "client_id": client["clientId"]},
                         auth=("Administrator", "wrong"))
    assert r.status_code == 401
    r = await public.get("/oauth2/authorize", params={"response_type": "token", "client_id": client["clientId"],
                                                      "state": "s"}, auth=ADMIN)
    assert r.status_code == 302 and "error=unsupported_response_type" in r.headers["location"]


async def test_introspection_and_revocation(node: Node, public: httpx.AsyncClient) -> None:
    client = await make_strategy(node, refreshCount="1")
    other = await make_strategy(node, name="other")
    auth = (client["clientId"], client["clientSecret"])
    token = (await public.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=auth)).json()
    info = (await public.post("/oauth2/introspect", data={"token": token["access_token"]},
                              auth=(other["clientId"], other["clientSecret"]))).json()
    assert info["active"] is True and info["client_id"] == client["clientId"] and info["exp"] > time.time()
    assert (await public.post("/oauth2/introspect", data={"token": token["access_token"]})).status_code == 401
    # another client cannot revoke it (200 all the same, RFC 7009)
    r = await public.post("/oauth2/revoke", data={"token": token["access_token"]},
                          auth=(other["clientId"], other["clientSecret"]))
    assert r.status_code == 200
    assert (await public.post("/oauth2/introspect", data={"token": token["access_token"]}, auth=auth)).json()[
        "active"] is True
    r = await public.post("/oauth2/revoke", data={"token": token["access_token"]}, auth=auth)
    assert r.status_code == 200
    assert (await public.post("/oauth2/introspect", data={"token": token["access_token"]}, auth=auth)).json() == {
        "active": False}


async def test_discovery_and_jwks(node: Node, public: httpx.AsyncClient) -> None:
    meta = (await public.get("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == "Portico" and meta["token_endpoint"] == f"{node.base}/oauth2/token"
    assert "S256" in meta["code_challenge_methods_supported"]
    jwks = (await public.get("/rest/pub/apigateway/jwt/certs")).json()
    assert jwks == (await public.get(meta["jwks_uri"])).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256" and "d" not in key


async def test_get_json_web_token(node: Node, public: httpx.AsyncClient) -> None:
    r = await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)
    assert r.status_code == 200, r.text
    token = r.json()["jwt"]
    jwks = (await public.get("/rest/pub/apigateway/jwt/certs")).json()
    verified = await JwtVerifier(issuer="Portico", keys=StaticKeys(import_jwks(jwks))).verify(token)
    assert verified.subject == "Administrator"
    assert verified.expires_at is not None and 3500 < verified.expires_at - time.time() <= 3600
    assert (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken")).status_code == 401
    wrong = await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=("Administrator", "nope"))
    assert wrong.status_code == 401 and "errorDetails" in wrong.json()
    unknown_app = await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", params={"app_id": "nope"}, auth=ADMIN)
    assert unknown_app.status_code == 400
    with pytest.raises(TokenError):  # signed by this node's key only
        await JwtVerifier(issuer="Other", keys=StaticKeys(import_jwks(jwks))).verify(token)


async def test_malformed_bodies_are_4xx(node: Node, public: httpx.AsyncClient) -> None:
    r = await public.post("/oauth2/token", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = await public.post("/oauth2/token", content=b"grant_type=a&grant_type=b",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    r = await public.post("/oauth2/token", content=b"x" * 70_000)
    assert r.status_code == 413
    assert (await public.get("/oauth2/nothing")).status_code == 404
    assert (await public.get("/oauth2/token")).status_code == 405


async def test_public_clients_may_not_introspect(node: Node, public: httpx.AsyncClient) -> None:
    """RFC 7662 4: the caller must be authorized; a public client has no secret to prove who it is."""
    confidential = await make_strategy(node)
    public_client = await make_strategy(node, name="spa", clientType="PUBLIC", allowedGrantTypes=["authorization_code"])
    token = (await public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                               auth=(confidential["clientId"], confidential["clientSecret"]))).json()["access_token"]
    r = await public.post("/oauth2/introspect", data={"token": token, "client_id": public_client["clientId"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client" and "active" not in r.json()
    r = await public.post("/oauth2/introspect", data={"token": token},
                          auth=(confidential["clientId"], confidential["clientSecret"]))
    assert r.status_code == 200 and r.json()["active"] is True


async def test_redirect_uri_must_be_repeated(node: Node, public: httpx.AsyncClient) -> None:
    """RFC 6749 4.1.3: sent at the authorization request, required (and equal) at the token request."""
    client = await make_strategy(node)
    auth = (client["clientId"], client["clientSecret"])
    code = (await authorize(public, client["clientId"]))["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code}, auth=auth)
    assert r.status_code == 400 and "redirect_uri" in r.json()["error_description"]
    code = (await authorize(public, client["clientId"]))["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": REDIRECT + "/other"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # not sent at the authorization request (the only registered URI was used): may be left out
    r = await public.get("/oauth2/authorize", params={"response_type": "code", "client_id": client["clientId"]},
                         auth=ADMIN)
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code}, auth=auth)
    assert r.status_code == 200, r.text


async def test_refresh_tokens_only_with_the_grant_and_they_expire(node: Node, public: httpx.AsyncClient) -> None:
    no_refresh = await make_strategy(node, name="no-refresh", refreshCount="5",
                                     allowedGrantTypes=["authorization_code"])
    code = (await authorize(public, no_refresh["clientId"]))["code"][0]
    auth = (no_refresh["clientId"], no_refresh["clientSecret"])
    r = await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": REDIRECT}, auth=auth)
    assert r.status_code == 200 and "refresh_token" not in r.json()
    r = await public.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    # refresh tokens expire (refreshTokenExpInterval), and expired grants are then removed
    local = (await node.admin.get("/alias/local")).json()["alias"]
    local["tokenGeneratorConfig"].update(refreshTokenExpInterval=1, accessTokenExpInterval=1)
    assert (await node.admin.put("/alias/local", json=local)).status_code == 200
    client = await make_strategy(node, refreshCount="5")
    auth = (client["clientId"], client["clientSecret"])
    code = (await authorize(public, client["clientId"]))["code"][0]
    tokens = (await public.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                       "redirect_uri": REDIRECT}, auth=auth)).json()
    listed = (await node.admin.get("/oauthTokens", params={"clientId": client["clientId"]})).json()["oauthTokens"]
    assert listed[0]["refreshExpires"] - listed[0]["created"] == 1000
    await asyncio.sleep(1.2)
    r = await public.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                 "refresh_token": tokens["refresh_token"]}, auth=auth)
    assert r.status_code == 400 and "expired" in r.json()["error_description"]
    r = await node.admin.delete("/oauthTokens/expired")
    assert r.json()["removedTokensCount"] == 1  # refreshes left, but the refresh token has expired
    assert (await node.admin.get("/oauthTokens", params={"clientId": client["clientId"]})).json()["total"] == 0


@pytest.mark.parametrize("bad", [{"refreshTokenExpInterval": 0}, {"refreshTokenExpInterval": True},
                                 {"accessTokenExpInterval": 2**31}, {"expiry": "soon"}])
async def test_token_settings_are_bounded(node: Node, bad: dict[str, Any]) -> None:
    local = (await node.admin.get("/alias/local")).json()["alias"]
    r = await node.admin.put("/alias/local", json={**local, "tokenGeneratorConfig": {
        **local["tokenGeneratorConfig"], **bad}})
    assert r.status_code == 400 and next(iter(bad)) in r.json()["errorDetails"]
