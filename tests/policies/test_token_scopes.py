"""Scope mappings (``/scopes``, issue 5) at the gateway for every token type: ``jwtClaims``,
``oAuth2Token`` and ``openIdConnect`` use the token's scopes (``scope`` or ``scp``) on the server
that issued it; a valid token lacking the mapped scope is a 403 even when anonymous calls are
allowed (only a call without credentials is anonymous)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.test_runtime import add_action, key_of, new_app, rules
from tests.policies.test_token_identification import access_token, bearer, external, local_client
from tests.support.node import ADMIN, Node
from tests.support.oauth_server import running_oauth_server
from tests.support.upstream import Upstream, spec_for

ECHO = "/Echo/1.0/echo"


async def set_local_scopes(node: Node, *names: str) -> None:
    local = (await node.admin.get("/alias/local")).json()["alias"]
    local["scopes"] = [{"name": n, "description": n} for n in names]
    r = await node.admin.put("/alias/local", json=local)
    assert r.status_code == 200, r.text


async def map_scope(node: Node, name: str, api_id: str, server: str, scope: str) -> str:
    r = await node.admin.post("/scopes", json={
        "scopeName": name, "apiScopes": [api_id],
        "requiredAuthScopes": [{"authServerAlias": server, "scopeName": scope}]})
    assert r.status_code == 201, r.text
    await node.reload()
    scope_id: str = r.json()["scope"]["id"]
    return scope_id


def refused_for_scope(r: httpx.Response) -> bool:
    return r.status_code == 403 and "scope" in r.json()["Exception"] and \
        r.headers.get("www-authenticate") == 'Bearer error="insufficient_scope"'


async def test_jwt_claims_tokens_need_a_mapped_scope_of_their_issuer(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("jwtClaims", anonymous=True))
    with running_oauth_server() as ext:
        await external(node, ext)
        await new_app(node, [api["id"]], name="ext", identifiers=[
            {"key": "jwtClaims", "name": "c", "value": ['{"client_id": "ext-client"}']}])
        read, write = ext.sign(scope="read"), ext.sign(scope="read write")
        scp = ext.sign(scope=None, scp=["write"])
        assert (await node.gw.get(ECHO, headers=bearer(read))).status_code == 200  # no mapping yet
        # the same scope name on another server does not count: the token's issuer decides
        await set_local_scopes(node, "write")
        local_id = await map_scope(node, "local-writers", api["id"], "local", "write")
        assert refused_for_scope(await node.gw.get(ECHO, headers=bearer(write)))
        assert (await node.admin.delete(f"/scopes/{local_id}")).status_code == 204
        await map_scope(node, "ext-writers", api["id"], "ext", "write")
        refused = await node.gw.get(ECHO, headers=bearer(read))
        assert refused_for_scope(refused), refused.text  # allowAnonymous does not let it through
        assert (await node.gw.get(ECHO, headers=bearer(write))).status_code == 200
        assert (await node.gw.get(ECHO, headers=bearer(scp))).status_code == 200  # scp: a list
        assert (await node.gw.get(ECHO)).status_code == 200  # no credentials at all: anonymous


async def test_oauth2_token_lacking_scope_is_not_anonymous(node: Node, upstream: Upstream) -> None:
    await set_local_scopes(node, "read", "write")
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token", anonymous=True))
    reg, sid = await local_client(node)
    await new_app(node, [api["id"]], name="scoped", authStrategyIds=[sid])
    await map_scope(node, "writers", api["id"], "local", "write")
    assert refused_for_scope(await node.gw.get(ECHO, headers=bearer(await access_token(node, reg, "read"))))
    assert (await node.gw.get(ECHO, headers=bearer(await access_token(node, reg, "write")))).status_code == 200
    assert (await node.gw.get(ECHO)).status_code == 200
    # a refused token stays refused whatever rule comes first (OR with an API key that is wrong)
    await add_action(node, api, "evaluatePolicy", "IAM", rules("apiKey", "oAuth2Token", anonymous=True))
    headers = {**bearer(await access_token(node, reg, "read")), "x-gateway-apikey": "wrong"}
    assert refused_for_scope(await node.gw.get(ECHO, headers=headers))
    headers = {**bearer("not-a-token"), "x-gateway-apikey": "wrong"}
    assert (await node.gw.get(ECHO, headers=headers)).status_code == 401


async def openid_tokens(node: Node, reg: dict[str, Any], scope: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.base, follow_redirects=False) as public:
        r = await public.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": reg["clientId"], "redirect_uri": "https://app.example/cb",
            "scope": scope}, auth=ADMIN)
        assert r.status_code in (302, 303), r.text
        code = httpx.URL(r.headers["location"]).params["code"]
        r = await public.post("/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.example/cb"},
            auth=(reg["clientId"], reg["clientSecret"]))
    assert r.status_code == 200, r.text
    tokens: dict[str, Any] = r.json()
    return tokens


async def test_openid_id_tokens_need_a_mapped_scope(node: Node, upstream: Upstream) -> None:
    await set_local_scopes(node, "read", "write")
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("openIdConnect", anonymous=True))
    r = await node.admin.post("/strategies", json={
        "name": "oidc", "type": "OPENID_CONNECT_RSA", "authServerAlias": "local",
        "dcrConfig": {"allowedGrantTypes": ["authorization_code"], "redirectUris": ["https://app.example/cb"]}})
    assert r.status_code == 200, r.text
    strategy = r.json()["strategy"]
    await new_app(node, [api["id"]], name="oidc-app", authStrategyIds=[strategy["id"]])
    await map_scope(node, "writers", api["id"], "local", "write")
    reader = await openid_tokens(node, strategy["clientRegistration"], "openid read")
    writer = await openid_tokens(node, strategy["clientRegistration"], "openid write")
    assert refused_for_scope(await node.gw.get(ECHO, headers=bearer(reader["id_token"])))
    assert (await node.gw.get(ECHO, headers=bearer(writer["id_token"]))).status_code == 200


async def test_default_scope_is_usable_when_local_lists_no_scopes(node: Node, upstream: Upstream) -> None:
    """pg_oauth2_createDefaultScopes with the shipped local server (no scopes listed): the API's
    scope is added to the local server, so a client can be granted it and call the API."""
    r = await node.admin.put("/configurations/settings",
                             json={"extendedKeys": {"pg_oauth2_createDefaultScopes": "true"}})
    assert r.status_code == 200, r.text
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    assert [s["name"] for s in (await node.admin.get("/alias/local")).json()["alias"]["scopes"]] == ["Echo_1.0"]
    reg, sid = await local_client(node)
    await new_app(node, [api["id"]], name="scoped", authStrategyIds=[sid])
    assert (await node.gw.get(ECHO, headers=bearer(await access_token(node, reg, "Echo_1.0")))).status_code == 200
    assert refused_for_scope(await node.gw.get(ECHO, headers=bearer(await access_token(node, reg, "openid"))))


async def test_jwt_strategy_of_another_client_does_not_identify(node: Node, upstream: Upstream) -> None:
    """jwtClaims falling back to the applications' JWT strategies: a strategy naming a client
    identifies only that client's tokens (before, any token of the issuer took the first one)."""
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("jwtClaims"))
    with running_oauth_server() as ext:
        await external(node, ext)
        strategies = {}
        for client_id in ("other-client", "ext-client"):
            r = await node.admin.post("/strategies", json={"name": client_id, "type": "JWT_RSA",
                                                           "authServerAlias": "ext", "clientId": client_id})
            assert r.status_code == 200, r.text
            strategies[client_id] = r.json()["strategy"]["id"]
        await new_app(node, [api["id"]], name="other", authStrategyIds=[strategies["other-client"]])
        await new_app(node, [], name="mine", authStrategyIds=[strategies["ext-client"]])
        assert (await node.gw.get(ECHO, headers=bearer(ext.sign(client_id="other-client")))).status_code == 200
        refused = await node.gw.get(ECHO, headers=bearer(ext.sign(client_id="ext-client")))
        assert refused.status_code == 403 and "Unable to identify" in refused.json()["Exception"], refused.text


async def test_jwt_claim_values_match_by_json_type(node: Node, upstream: Upstream) -> None:
    """A claim set's ``true`` is not the number 1 (nor 1.0), in a scalar or in a list claim."""
    api = await node.create_api(spec_for(upstream.url))
    await add_action(node, api, "evaluatePolicy", "IAM", rules("jwtClaims"))
    with running_oauth_server() as ext:
        await external(node, ext)
        await new_app(node, [api["id"]], name="admins", identifiers=[
            {"key": "jwtClaims", "name": "c", "value": ['{"client_id": "ext-client", "admin": true}']}])
        assert (await node.gw.get(ECHO, headers=bearer(ext.sign(admin=True)))).status_code == 200
        assert (await node.gw.get(ECHO, headers=bearer(ext.sign(admin=[False, True])))).status_code == 200
        for value in (1, 1.0, [1]):
            r = await node.gw.get(ECHO, headers=bearer(ext.sign(admin=value)))
            assert r.status_code == 403, (value, r.text)


async def test_missing_authorization_header_can_be_a_violation(node: Node, upstream: Upstream) -> None:
    """triggerPolicyViolationOnMissingAuthorizationHeader: a call that no rule identified and that
    sent no Authorization header is a 401, even with anonymous calls allowed."""
    await set_local_scopes(node, "read")
    api = await node.create_api(spec_for(upstream.url))
    flag = {"templateKey": "triggerPolicyViolationOnMissingAuthorizationHeader", "values": ["true"]}
    await add_action(node, api, "evaluatePolicy", "IAM", [*rules("oAuth2Token", "apiKey", anonymous=True), flag])
    reg, sid = await local_client(node)
    app = await new_app(node, [api["id"]], name="app", authStrategyIds=[sid])
    missing = await node.gw.get(ECHO)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer"), missing.text
    assert (await node.gw.get(ECHO, headers=bearer(await access_token(node, reg, "read")))).status_code == 200
    assert (await node.gw.get(ECHO, headers={"x-gateway-apikey": key_of(app)})).status_code == 200


async def test_api_scope_mappings_guard_their_resources_and_methods(node: Node, upstream: Upstream) -> None:
    """``<apiId>:<scope>`` mappings: a token reaches what a mapping covering the resource and method
    requires a scope for; once mappings name the API, a resource none covers is closed to tokens (the
    guide: a ``readonly`` token mapped to the GET resources "can invoke only the GET resources")."""
    await set_local_scopes(node, "read", "write")
    reads = {"name": "reads", "references": [{"resourcePath": "/echo", "supportedOperations": ["GET"]}]}
    statuses = {"name": "statuses", "references": [{"resourcePath": "/status/{id}", "supportedOperations": []}]}
    api = await node.create_api(spec_for(upstream.url), scopes=[reads, statuses])
    await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token", anonymous=True))
    reg, sid = await local_client(node)
    await new_app(node, [api["id"]], name="scoped", authStrategyIds=[sid])
    read = bearer(await access_token(node, reg, "read"))
    write = bearer(await access_token(node, reg, "write"))
    assert (await node.gw.post(ECHO, headers=read)).status_code == 200  # no mapping yet: any valid token
    for ref in ("reads", "statuses"):
        r = await node.admin.post("/scopes", json={
            "scopeName": f"{ref}-mapping", "apiScopes": [f"{api['id']}:{ref}"],
            "requiredAuthScopes": [{"authServerAlias": "local", "scopeName": "read" if ref == "reads" else "write"}]})
        assert r.status_code == 201, r.text
    await node.reload()
    assert (await node.gw.get(ECHO, headers=read)).status_code == 200
    assert (await node.gw.head(ECHO, headers=read)).status_code == 200  # HEAD is the GET resource
    assert refused_for_scope(await node.gw.get(ECHO, headers=write))
    assert (await node.gw.get("/Echo/1.0/status/200", headers=write)).status_code == 200  # the whole resource
    assert refused_for_scope(await node.gw.get("/Echo/1.0/status/200", headers=read))
    assert refused_for_scope(await node.gw.post(ECHO, headers=read))  # POST /echo: no mapping covers it
    assert refused_for_scope(await node.gw.post(ECHO, headers=write))
    assert (await node.gw.post(ECHO)).status_code == 200  # no credentials: anonymous, as before

    # moving the API scope to POST moves the guard: the coverage is read at each snapshot
    moved = {"name": "reads", "references": [{"resourcePath": "/echo", "supportedOperations": ["POST"]}]}
    r = await node.admin.put(f"/apis/{api['id']}", json={"scopes": [moved, statuses]})
    assert r.status_code == 200, r.text
    await node.reload()
    assert (await node.gw.post(ECHO, headers=read)).status_code == 200
    assert refused_for_scope(await node.gw.get(ECHO, headers=read))


async def test_default_scopes_of_apis_whose_names_normalise_alike(node: Node, upstream: Upstream) -> None:
    """"My API" 1.0 and "My_API" 1.0 both normalise to the scope name My_API_1.0: the second API
    gets a scope of its own, so a token for one does not open the other; the first keeps its name."""
    r = await node.admin.put("/configurations/settings",
                             json={"extendedKeys": {"pg_oauth2_createDefaultScopes": "true"}})
    assert r.status_code == 200, r.text
    first = await node.create_api(spec_for(upstream.url, title="My API"))
    second = await node.create_api(spec_for(upstream.url, title="My_API"))
    scopes = [s["name"] for s in (await node.admin.get("/alias/local")).json()["alias"]["scopes"]]
    assert scopes[0] == "My_API_1.0" and len(scopes) == 2 and scopes[1].startswith("My_API_1.0_"), scopes
    mappings = {m["apiScopes"][0]: m["requiredAuthScopes"][0]["scopeName"]
                for m in (await node.admin.get("/scopes")).json()["scopes"]}
    assert mappings == {first["id"]: scopes[0], second["id"]: scopes[1]}, mappings
    reg, sid = await local_client(node)
    for api in (first, second):
        await add_action(node, api, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    await new_app(node, [first["id"], second["id"]], name="scoped", authStrategyIds=[sid])
    for_first, for_second = (await access_token(node, reg, scopes[0]), await access_token(node, reg, scopes[1]))
    assert (await node.gw.get("/My API/1.0/echo", headers=bearer(for_first))).status_code == 200
    assert refused_for_scope(await node.gw.get("/My_API/1.0/echo", headers=bearer(for_first)))
    assert (await node.gw.get("/My_API/1.0/echo", headers=bearer(for_second))).status_code == 200
    assert refused_for_scope(await node.gw.get("/My API/1.0/echo", headers=bearer(for_second)))


async def _default_scopes_on(node: Node) -> None:
    r = await node.admin.put("/configurations/settings",
                             json={"extendedKeys": {"pg_oauth2_createDefaultScopes": "true"}})
    assert r.status_code == 200, r.text


async def _local_scopes(node: Node) -> list[str]:
    return [s["name"] for s in (await node.admin.get("/alias/local")).json()["alias"]["scopes"]]


async def _delete_api(node: Node, api_id: str) -> None:
    assert (await node.admin.put(f"/apis/{api_id}/deactivate")).status_code == 200
    r = await node.admin.delete(f"/apis/{api_id}", params={"forceDelete": "true"})
    assert r.status_code in (200, 204), r.text


async def test_deleting_an_api_removes_its_default_local_scope(node: Node, upstream: Upstream) -> None:
    """The scope created for an API on ``local`` goes with the API (a token for a deleted API's scope
    can no longer be asked for); a scope that was there before, or that a mapping of the user's
    requires for another API, stays; an API created again under the same name gets its scope again."""
    other = await node.create_api(spec_for(upstream.url, title="Other"))  # before the setting: no scope
    await set_local_scopes(node, "read", "Shared_1.0")
    await _default_scopes_on(node)
    echo = await node.create_api(spec_for(upstream.url))
    shared = await node.create_api(spec_for(upstream.url, title="Shared"))  # its scope was there already
    kept = await node.create_api(spec_for(upstream.url, title="Kept"))
    assert await _local_scopes(node) == ["read", "Shared_1.0", "Echo_1.0", "Kept_1.0"]
    await map_scope(node, "kept-for-other", other["id"], "local", "Kept_1.0")
    reg, _ = await local_client(node)
    await access_token(node, reg, "Echo_1.0")  # grantable while the API exists
    for api in (echo, shared, kept):
        await _delete_api(node, api["id"])
    assert await _local_scopes(node) == ["read", "Shared_1.0", "Kept_1.0"]
    async with httpx.AsyncClient(base_url=node.base) as public:
        r = await public.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": "Echo_1.0"},
                              auth=(reg["clientId"], reg["clientSecret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
    assert [m["scopeName"] for m in (await node.admin.get("/scopes")).json()["scopes"]] == ["kept-for-other"]
    again = await node.create_api(spec_for(upstream.url))
    assert await _local_scopes(node) == ["read", "Shared_1.0", "Kept_1.0", "Echo_1.0"]
    await _delete_api(node, again["id"])
    assert await _local_scopes(node) == ["read", "Shared_1.0", "Kept_1.0"]


async def _api_and_granted_client(node: Node, upstream: Upstream) -> tuple[dict[str, Any], dict[str, Any]]:
    """Default scopes on, the Echo API, and a client of ``local`` granted its scope ``Echo_1.0``."""
    await _default_scopes_on(node)
    api = await node.create_api(spec_for(upstream.url))
    r = await node.admin.post("/strategies", json={
        "name": "granted", "type": "OAUTH2", "authServerAlias": "local",
        "dcrConfig": {"allowedGrantTypes": ["client_credentials"], "scopes": ["Echo_1.0"]}})
    assert r.status_code == 200, r.text
    return api, r.json()["strategy"]


async def test_a_default_scope_a_client_was_granted_is_not_reused(node: Node, upstream: Upstream) -> None:
    """A client granted a deleted API's scope keeps it (the grant is the user's), so that scope stays
    on ``local``; a new API of the same name gets a scope of its own instead of that one, or the
    client's old grant would open it."""
    first, _ = await _api_and_granted_client(node, upstream)
    await _delete_api(node, first["id"])
    assert await _local_scopes(node) == ["Echo_1.0"]
    second = await node.create_api(spec_for(upstream.url))
    scopes = await _local_scopes(node)
    assert len(scopes) == 2 and scopes[1] == f"Echo_1.0_{second['id'][:8]}", scopes
    (mapping,) = (await node.admin.get("/scopes")).json()["scopes"]
    assert mapping["requiredAuthScopes"] == [{"authServerAlias": "local", "scopeName": scopes[1]}]


async def test_tokens_of_a_deleted_apis_default_scope_never_open_its_successor(node: Node,
                                                                                 upstream: Upstream) -> None:
    """Deleting an API revokes the local server's grants carrying its default scope (access and
    refresh tokens, and pending codes go): an API created again under the same name gets the same
    scope name, and a token issued for the deleted one must not open it; a new token does."""
    await _default_scopes_on(node)
    first = await node.create_api(spec_for(upstream.url))
    await add_action(node, first, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    r = await node.admin.post("/strategies", json={
        "name": "coded", "type": "OAUTH2", "authServerAlias": "local",
        "dcrConfig": {"allowedGrantTypes": ["client_credentials", "authorization_code", "refresh_token"],
                      "redirectUris": ["https://app.example/cb"], "refreshCount": "5"}})
    assert r.status_code == 200, r.text
    strategy = r.json()["strategy"]
    reg = strategy["clientRegistration"]
    app = await new_app(node, [first["id"]], name="scoped", authStrategyIds=[strategy["id"]])
    old = await access_token(node, reg, "Echo_1.0")
    coded = await openid_tokens(node, reg, "Echo_1.0")
    assert coded.get("refresh_token"), coded
    async with httpx.AsyncClient(base_url=node.base, follow_redirects=False) as public:
        r = await public.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": reg["clientId"], "redirect_uri": "https://app.example/cb",
            "scope": "Echo_1.0"}, auth=ADMIN)
    assert r.status_code in (302, 303), r.text
    pending = httpx.URL(r.headers["location"]).params["code"]
    for token in (old, coded["access_token"]):
        assert (await node.gw.get(ECHO, headers=bearer(token))).status_code == 200

    await _delete_api(node, first["id"])
    second = await node.create_api(spec_for(upstream.url))
    await add_action(node, second, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    r = await node.admin.put(f"/applications/{app['id']}/apis", json={"apiIDs": [second["id"]]})
    assert r.status_code == 200, r.text
    await node.reload()
    assert await _local_scopes(node) == ["Echo_1.0"]  # the plain name again: the old grants are gone
    for token in (old, coded["access_token"]):
        r = await node.gw.get(ECHO, headers=bearer(token))
        assert r.status_code in (401, 403), (r.status_code, r.text)
    async with httpx.AsyncClient(base_url=node.base) as public:
        auth = (reg["clientId"], reg["clientSecret"])
        r = await public.post("/oauth2/token", auth=auth,
                              data={"grant_type": "refresh_token", "refresh_token": coded["refresh_token"]})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        r = await public.post("/oauth2/token", auth=auth, data={
            "grant_type": "authorization_code", "code": pending, "redirect_uri": "https://app.example/cb"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    fresh = await access_token(node, reg, "Echo_1.0")
    assert (await node.gw.get(ECHO, headers=bearer(fresh))).status_code == 200


async def test_a_default_scope_live_grants_carry_is_not_reused(node: Node, upstream: Upstream) -> None:
    """A client granted a deleted API's scope keeps its tokens (the scope was not freed); once the
    grant is taken from the client, a new API of that name still gets a scope of its own while a
    token carrying the old one can be used, or that token would open it."""
    first, strategy = await _api_and_granted_client(node, upstream)
    old = await access_token(node, strategy["clientRegistration"], "Echo_1.0")
    await _delete_api(node, first["id"])
    strategy["dcrConfig"]["scopes"] = []
    r = await node.admin.put(f"/strategies/{strategy['id']}", json=strategy)
    assert r.status_code == 200, r.text
    second = await node.create_api(spec_for(upstream.url))
    await add_action(node, second, "evaluatePolicy", "IAM", rules("oAuth2Token"))
    await new_app(node, [second["id"]], name="scoped", authStrategyIds=[strategy["id"]])
    scopes = await _local_scopes(node)
    assert scopes == ["Echo_1.0", f"Echo_1.0_{second['id'][:8]}"], scopes
    assert refused_for_scope(await node.gw.get(ECHO, headers=bearer(old)))
