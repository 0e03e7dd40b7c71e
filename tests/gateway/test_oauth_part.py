"""The ``oauth`` snapshot part: local opaque tokens and local JWTs mapped to the applications whose
strategies hold the client, revocation seen, validators kept across unrelated configuration changes."""

from __future__ import annotations

import httpx
import pytest

from portico.oauth.runtime import EXTRAS, OAuthView
from portico.oauth.validate import TokenError
from tests.support.node import ADMIN, Node


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
