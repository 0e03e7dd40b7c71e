"""``/applications`` through the real management API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def test_crud_and_shapes(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(spec_for(upstream.url), activate=False)
    r = await node.admin.post("/applications", json={
        "name": "Mobile", "description": "d", "version": "2", "contactEmails": ["a@example.com"],
        "identifiers": [{"key": "ipAddressRange", "name": "office", "value": ["10.0.0.1-10.0.0.9"]}],
        "apiIDs": [api["id"]],
    })
    assert r.status_code == 200, r.text
    app = r.json()
    tokens = app["accessTokens"]["apiAccessKey_credentials"]
    assert len(tokens["apiAccessKey"]) == 64 and tokens["expirationDate"] is None and tokens["expired"] is False
    assert app["consumingAPIs"] == [api["id"]] and app["created"].endswith("GMT")
    listed = (await node.admin.get("/applications")).json()["applications"]
    assert [a["id"] for a in listed] == [app["id"]]
    one = (await node.admin.get(f"/applications/{app['id']}")).json()["applications"]
    assert one[0]["name"] == "Mobile"
    updated = await node.admin.put(f"/applications/{app['id']}", json={"description": "new", "siteURLs": ["https://x"]})
    assert updated.status_code == 200 and updated.json()["description"] == "new"
    assert updated.json()["accessTokens"] == app["accessTokens"] | {
        "apiAccessKey_credentials": updated.json()["accessTokens"]["apiAccessKey_credentials"]}
    assert (await node.admin.get(f"/apis/{api['id']}/applications")).json()["applications"][0]["id"] == app["id"]
    assert (await node.admin.delete(f"/applications/{app['id']}")).status_code == 204
    assert (await node.admin.get(f"/applications/{app['id']}")).status_code == 404


async def test_registration_replaces_the_list(node: Node, upstream: Upstream) -> None:
    a = await node.create_api(spec_for(upstream.url, "A"), activate=False)
    b = await node.create_api(spec_for(upstream.url, "B"), activate=False)
    app = (await node.admin.post("/applications", json={"name": "x"})).json()
    r = await node.admin.post(f"/applications/{app['id']}/apis", json={"apiIDs": [a["id"], b["id"], a["id"]]})
    assert r.json() == {"apiIDs": [a["id"], b["id"]]}
    r = await node.admin.put(f"/applications/{app['id']}/apis", json={"apiIDs": [b["id"]]})
    assert (await node.admin.get(f"/applications/{app['id']}/apis")).json() == {"apiIDs": [b["id"]]}
    bad = await node.admin.put(f"/applications/{app['id']}/apis", json={"apiIDs": ["nope"]})
    assert bad.status_code == 400 and "nope" in bad.json()["errorDetails"]
    assert (await node.admin.get(f"/applications/{app['id']}/apis")).json() == {"apiIDs": [b["id"]]}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x", "identifiers": [{"key": "made-up", "value": ["a"]}]}, "made-up"),
        ({"name": "x", "identifiers": "no"}, "identifiers"),
        ({"name": "x", "contactEmails": "a@b"}, "contactEmails"),
        ({"name": "x", "apiIDs": ["missing"]}, "missing"),
    ],
)
async def test_bad_input(node: Node, body: dict[str, Any], fragment: str) -> None:
    r = await node.admin.post("/applications", json=body)
    assert r.status_code == 400 and fragment in r.json()["errorDetails"]
    assert (await node.admin.get("/applications")).json() == {"applications": []}


async def test_unknown_ids_and_bad_patch(node: Node) -> None:
    assert (await node.admin.get("/applications/none")).status_code == 404
    assert (await node.admin.put("/applications/none", json={"name": "x"})).status_code == 404
    assert (await node.admin.delete("/applications/none")).status_code == 404
    app = (await node.admin.post("/applications", json={"name": "x"})).json()
    assert (await node.admin.patch(f"/applications/{app['id']}", json={"isSuspended": "maybe"})).status_code == 400
    assert (await node.admin.patch(f"/applications/{app['id']}", json={})).status_code == 400
    bad_type = await node.admin.post(f"/applications/{app['id']}/accessTokens", json={"type": "oAuthCredentials"})
    assert bad_type.status_code == 400


async def test_expiry_from_setting_and_bulk_refresh(node: Node) -> None:
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"apiKeyExpirationPeriod": "2 days"}}})
    app = (await node.admin.post("/applications", json={"name": "x"})).json()
    creds = app["accessTokens"]["apiAccessKey_credentials"]
    assert creds["expirationInterval"] == "2 days" and creds["expirationDate"]
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"apiKeyExpirationPeriod": ""}}})
    r = await node.admin.put("/applications/accessTokens")
    assert r.json() == {"updated": 1}
    refreshed = (await node.admin.get(f"/applications/{app['id']}")).json()["applications"][0]
    assert refreshed["accessTokens"]["apiAccessKey_credentials"]["expirationDate"] is None


async def test_bulk_delete(node: Node) -> None:
    a = (await node.admin.post("/applications", json={"name": "a"})).json()
    b = (await node.admin.post("/applications", json={"name": "b"})).json()
    assert (await node.admin.delete("/applications", params={"ids": f"{a['id']},nope"})).status_code == 404
    assert len((await node.admin.get("/applications")).json()["applications"]) == 2
    assert (await node.admin.delete("/applications", params={"ids": f"{a['id']},{b['id']}"})).status_code == 204
    assert (await node.admin.get("/applications")).json() == {"applications": []}


async def test_token_endpoints_of_an_application(node: Node) -> None:
    app = (await node.admin.post("/applications", json={"name": "oauth-client"})).json()
    r = await node.admin.get(f"/applications/{app['id']}/accessTokens")
    assert r.status_code == 200, r.text
    uris = r.json()["local"]["uris"]
    assert uris["accessTokenUrl"] == f"{node.base}/invoke/pub.apigateway.oauth2/getAccessToken"
    assert uris["authorizeUrl"].endswith("/invoke/pub.apigateway.oauth2/authorize")
    # the advertised token endpoint answers (an unknown client is refused, not a 404)
    async with httpx.AsyncClient() as c:
        answer = await c.post(uris["accessTokenUrl"], data={"grant_type": "client_credentials",
                                                            "client_id": "nobody", "client_secret": "x"})
    assert answer.status_code in (400, 401), answer.text
    assert (await node.admin.get("/applications/no-such-app/accessTokens")).status_code == 404


async def test_only_the_owner_or_an_administrator_modifies_or_deletes(sqlite_node: Node) -> None:
    """The guide: "You cannot modify or delete an application if you are not the owner of the application"."""
    from portico.security import privileges as priv
    from tests.admin.teams_support import add_user, client, make_team

    node = sqlite_node
    await add_user(node, "amy")
    await add_user(node, "ben")
    await make_team(node, "Apps", [priv.MANAGE_APPLICATIONS], users=["amy", "ben"])
    async with client(node, "amy") as amy, client(node, "ben") as ben:
        r = await amy.post("/applications", json={"name": "amys-app"})
        assert r.status_code == 200 and r.json()["owner"] == "amy"
        app_id = r.json()["id"]
        refused = [
            await ben.put(f"/applications/{app_id}", json={"description": "mine now"}),
            await ben.patch(f"/applications/{app_id}", json={"isSuspended": True}),
            await ben.post(f"/applications/{app_id}/accessTokens", json={"type": "apiAccessKeyCredentials"}),
            await ben.put(f"/applications/{app_id}/apis", json={"apiIDs": []}),
            await ben.delete(f"/applications/{app_id}"),
            await ben.delete(f"/applications?ids={app_id}"),
        ]
        for r in refused:
            assert r.status_code == 403 and "'amy'" in r.json()["errorDetails"], r.text
        assert (await ben.get(f"/applications/{app_id}")).status_code == 200   # reading stays open
        current = (await amy.get(f"/applications/{app_id}")).json()["applications"][0]
        assert current["description"] == "" and current["isSuspended"] is False
        assert (await amy.put(f"/applications/{app_id}", json={"description": "amy's"})).status_code == 200
        assert (await node.admin.patch(f"/applications/{app_id}", json={"isSuspended": True})).status_code == 200

        # an application owned by a team: its members are owners
        r = await node.admin.post("/assets/owner", json={"assetType": "APPLICATION", "assetIds": [app_id],
                                                          "newOwner": "Apps", "ownerType": "team"})
        assert r.status_code == 200, r.text
        assert (await ben.put(f"/applications/{app_id}", json={"description": "ours"})).status_code == 200
        assert (await ben.delete(f"/applications/{app_id}")).status_code == 204


async def test_a_client_certificate_identifies_one_application(node: Node) -> None:
    """Two applications with the same httpsCertificate would leave it to indexing order which one a
    caller is; the second is refused (409 naming the first), in whatever encoding it comes, and
    nothing of it is stored."""
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.support.keystores import keystore_fixtures

    fx = keystore_fixtures()
    pem = fx.server_cert.public_bytes(Encoding.PEM).decode()
    other = fx.ca.public_bytes(Encoding.PEM).decode()

    def cert(value: str) -> dict[str, Any]:
        return {"identifiers": [{"key": "httpsCertificate", "name": "client", "value": [value]}]}

    r = await node.admin.post("/applications", json={"name": "first", **cert(pem)})
    assert r.status_code == 200, r.text
    first = r.json()
    for value in (pem, base64.b64encode(pem.encode()).decode()):
        r = await node.admin.post("/applications", json={"name": "second", **cert(value)})
        assert r.status_code == 409, r.text
        assert "'first'" in r.json()["errorDetails"] and "identifiers[0]" in r.json()["errorDetails"], r.text
    names = [a["name"] for a in (await node.admin.get("/applications")).json()["applications"]]
    assert "second" not in names
    r = await node.admin.post("/applications", json={"name": "second", **cert(other)})
    assert r.status_code == 200, r.text
    second = r.json()
    r = await node.admin.put(f"/applications/{second['id']}", json={**second, **cert(pem)})
    assert r.status_code == 409 and "'first'" in r.json()["errorDetails"], r.text
    stored = (await node.admin.get(f"/applications/{second['id']}")).json()["applications"][0]
    assert stored["identifiers"][0]["value"] == [other]
    # An application keeps its own certificate when it is updated.
    r = await node.admin.put(f"/applications/{first['id']}", json={"description": "same", **cert(pem)})
    assert r.status_code == 200, r.text
