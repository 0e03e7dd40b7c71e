"""A routing endpoint's own ``sslConfig`` (issue 5 section 2): its truststore validates the native
service and its key answers a native service that asks for client certificates, ahead of the
endpoint alias's stores and the outbound defaults; the stores are checked when the action is written,
and a store a routing action uses cannot be deleted or replaced by one that no longer serves it.
Real TLS handshakes against real https upstreams."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.admin.test_keystores import pem_trust, upload
from tests.gateway.test_runtime import add_action
from tests.gateway.test_tls import upstream_tls
from tests.support.keystores import P12_PASS, TRUST_PASS, Fixtures, keystore_fixtures
from tests.support.node import Node
from tests.support.upstream import running_upstream, spec_for


@pytest.fixture(scope="module")
def fx() -> Fixtures:
    return keystore_fixtures()


def ssl_config(**fields: str) -> dict[str, Any]:
    return {"templateKey": "sslConfig", "parameters": [{"templateKey": k, "values": [v]} for k, v in fields.items()]}


def straight(uri: str, **ssl: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [{"templateKey": "endpointUri", "values": [uri + "/${sys:resource_path}"]}]
    return params + ([ssl_config(**ssl)] if ssl else [])


async def other_trust(node: Node, fx: Fixtures, name: str = "OtherCAs") -> None:
    """A truststore that does not know the test CA."""
    r = await upload(node, "truststore", name, fx.other_ca.public_bytes(Encoding.PEM), keyStoreType="PEM")
    assert r.status_code == 200, r.text


async def client_keys(node: Node, fx: Fixtures, name: str = "ClientKeys") -> None:
    r = await upload(node, "keystore", name, fx.read("client.p12"), keyStoreType="PKCS12",
                     keyStorePassword=P12_PASS, pkAliasesList="client", pkPasswordsList=P12_PASS)
    assert r.status_code == 200, r.text


async def routed_api(node: Node, name: str, uri: str, template: str = "straightThroughRouting",
                     parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec = spec_for("http://127.0.0.1:9")
    spec["info"]["title"] = name
    api = await node.create_api(spec)
    await add_action(node, api, template, "routing", parameters if parameters is not None else straight(uri))
    return api


async def tls_events(node: Node, api_id: str) -> list[dict[str, Any]]:
    await node.portico.events.flush()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r = await node.admin.get("/transactionalEvents/_search", params={"apiId": api_id, "fromDate": day, "toDate": day})
    events: list[dict[str, Any]] = r.json()["transaction"]
    return events


async def test_truststore_of_the_action_validates_the_native_service(sqlite_node: Node, fx: Fixtures,
                                                                      tmp_path: Path) -> None:
    node = sqlite_node
    await pem_trust(node, fx)  # knows the test CA
    await other_trust(node, fx)
    # The outbound default and an endpoint alias both name a truststore that does not know the test CA.
    r = await node.admin.put("/configurations/keystore", json={"outboundTruststoreName": "OtherCAs"})
    assert r.status_code == 200, r.text
    with running_upstream(upstream_tls(fx, tmp_path)) as up:
        r = await node.admin.post("/alias", json={"name": "backend", "type": "endpoint", "endPointURI": up.url,
                                                  "truststoreAlias": "OtherCAs"})
        assert r.status_code in (200, 201), r.text
        trusted = await routed_api(node, "Trusted", up.url, parameters=straight(up.url, trustStoreAlias="TestCAs"))
        aliased = await routed_api(node, "Aliased", "${backend}",
                                   parameters=straight("${backend}", trustStoreAlias="TestCAs"))
        plain = await routed_api(node, "Plain", up.url)
        await routed_api(node, "Dynamic", up.url, "dynamicRouting", [
            {"templateKey": "routeTo", "parameters": [{"templateKey": "endpointUri", "values": ["http://127.0.0.1:9"]}]},
            {"templateKey": "dynamicRule", "parameters": [
                {"templateKey": "routingConditionKey", "values": ["header"]},
                {"templateKey": "headerName", "values": ["X-Backend"]},
                {"templateKey": "dynRouteTo", "parameters": [ssl_config(trustStoreAlias="TestCAs")]}]}])
        await node.reload()
        for api in (trusted, aliased):
            ok = await node.gw.get(f"/{api['apiName']}/1.0/echo")
            assert ok.status_code == 200, ok.text
        ok = await node.gw.get("/Dynamic/1.0/echo", headers={"X-Backend": up.url + "/echo"})
        assert ok.status_code == 200, ok.text
        refused = await node.gw.get("/Plain/1.0/echo")  # the default truststore does not know the test CA
        assert refused.status_code == 502 and "certificate verify failed" in refused.text.lower(), refused.text
        events = await tls_events(node, plain["id"])
        assert events[0]["errorOrigin"] == "NATIVE_TLS_ERROR"
        # the action's truststore changed to one that does not know the CA: refused too
        await add_action(node, trusted, "straightThroughRouting", "routing",
                         straight(up.url, trustStoreAlias="OtherCAs"))
        await node.reload()
        r = await node.gw.get("/Trusted/1.0/echo")
        assert r.status_code == 502 and "certificate verify failed" in r.text.lower(), r.text


async def test_two_way_tls_with_the_action_key(sqlite_node: Node, fx: Fixtures, tmp_path: Path) -> None:
    node = sqlite_node
    await pem_trust(node, fx)
    await client_keys(node, fx)
    r = await node.admin.put("/configurations/keystore", json={"outboundTruststoreName": "TestCAs"})
    assert r.status_code == 200, r.text
    with running_upstream(upstream_tls(fx, tmp_path, require_client=True)) as up:
        keyed = await routed_api(node, "Keyed", up.url,
                                 parameters=straight(up.url, keyStoreAlias="ClientKeys", keyAlias="client"))
        lb = await routed_api(node, "Balanced", up.url, "loadBalancerRouting", [{"templateKey": "lbRouteTo",
            "parameters": [{"templateKey": "endpointUri", "values": [up.url + "/${sys:resource_path}"]},
                           ssl_config(keyStoreAlias="ClientKeys", keyAlias="client", trustStoreAlias="TestCAs")]}])
        await routed_api(node, "Keyless", up.url)
        await node.reload()
        for api in (keyed, lb):
            ok = await node.gw.get(f"/{api['apiName']}/1.0/echo")
            assert ok.status_code == 200, ok.text
        refused = await node.gw.get("/Keyless/1.0/echo")  # no key: the native service ends the handshake
        assert refused.status_code == 502, refused.text


async def test_stores_are_checked_when_the_action_is_written(node: Node, fx: Fixtures) -> None:
    await pem_trust(node, fx)
    await client_keys(node, fx)
    r = await upload(node, "truststore", "Unloaded", fx.read("trust.jks"), keyStorePassword="wrong-one")
    assert r.status_code == 200 and r.json()["isLoaded"] is False
    r = await upload(node, "keystore", "BadKeyPw", fx.read("client.p12"), keyStoreType="PKCS12",
                     keyStorePassword=P12_PASS, pkAliasesList="client", pkPasswordsList="not-the-password")
    assert r.status_code == 200 and r.json()["isLoaded"] is False
    before = await node.admin.get("/policyActions")
    cases = [
        ({"keyStoreAlias": "NoSuchKeys", "keyAlias": "client"}, "sslConfig.keyStoreAlias", "does not exist"),
        ({"keyStoreAlias": "ClientKeys", "keyAlias": "nobody"}, "sslConfig.keyAlias", "no key alias 'nobody'"),
        ({"keyStoreAlias": "BadKeyPw", "keyAlias": "client"}, "sslConfig.keyStoreAlias", "not loaded"),
        ({"trustStoreAlias": "NoSuchCAs"}, "sslConfig.trustStoreAlias", "does not exist"),
        ({"trustStoreAlias": "Unloaded"}, "sslConfig.trustStoreAlias", "not loaded"),
        ({"keyAlias": "client"}, "sslConfig", "keyAlias needs keyStoreAlias"),
    ]
    for fields, where, reason in cases:
        r = await node.admin.post("/policyActions", json={"policyAction": {
            "names": [{"value": "r", "locale": "English"}], "templateKey": "straightThroughRouting",
            "parameters": straight("https://127.0.0.1:9", **fields)}})
        assert r.status_code == 400, (fields, r.text)
        assert where in r.json()["errorDetails"] and reason in r.json()["errorDetails"], r.text
    # nested endpoints are checked too, and an update is checked like a create
    r = await node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": "r", "locale": "English"}], "templateKey": "contextBasedRouting", "parameters": [
            {"templateKey": "routeTo", "parameters": [
                {"templateKey": "endpointUri", "values": ["https://127.0.0.1:9"]},
                ssl_config(trustStoreAlias="NoSuchCAs")]}]}})
    assert r.status_code == 400 and "routeTo.sslConfig.trustStoreAlias" in r.json()["errorDetails"], r.text
    assert (await node.admin.get("/policyActions")).json() == before.json()  # nothing half-written
    r = await node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": "r", "locale": "English"}], "templateKey": "straightThroughRouting",
        "parameters": straight("https://127.0.0.1:9", trustStoreAlias="TestCAs", keyStoreAlias="ClientKeys",
                               keyAlias="client")}})
    assert r.status_code == 201, r.text
    action_id = r.json()["policyAction"]["id"]
    r = await node.admin.put(f"/policyActions/{action_id}", json={"policyAction": {
        "parameters": straight("https://127.0.0.1:9", trustStoreAlias="Unloaded")}})
    assert r.status_code == 400 and "not loaded" in r.json()["errorDetails"], r.text


async def test_stores_of_a_routing_action_are_in_use(node: Node, fx: Fixtures) -> None:
    await pem_trust(node, fx)
    await client_keys(node, fx)
    api = await routed_api(node, "Guarded", "https://127.0.0.1:9", parameters=straight(
        "https://127.0.0.1:9", trustStoreAlias="TestCAs", keyStoreAlias="ClientKeys", keyAlias="client"))
    for kind, name in (("truststore", "TestCAs"), ("keystore", "ClientKeys")):
        r = await node.admin.delete(f"/is/{kind}/{name}")
        assert r.status_code == 400, r.text
        assert "API 'Guarded' 1.0" in r.json()["errorDetails"] and "policy action" in r.json()["errorDetails"]
    # replacing the keystore by one without the key alias breaks the action: refused
    r = await upload(node, "keystore", "", fx.read("server.p12"), path="/is/keystore/ClientKeys",
                     keyStoreType="PKCS12", keyStorePassword=P12_PASS, pkAliasesList="server",
                     pkPasswordsList=P12_PASS)
    assert r.status_code == 400 and "'client'" in r.json()["errorDetails"], r.text
    r = await upload(node, "truststore", "", fx.read("trust.jks"), path="/is/truststore/TestCAs",
                     keyStoreType="JKS", keyStorePassword="wrong-one")
    assert r.status_code == 400 and "Guarded" in r.json()["errorDetails"], r.text
    r = await upload(node, "truststore", "", fx.read("trust.jks"), path="/is/truststore/TestCAs",
                     keyStoreType="JKS", keyStorePassword=TRUST_PASS)
    assert r.status_code == 200, r.text  # still loaded: fine
    # once the API (with its policy actions) is gone, the stores are free
    assert (await node.admin.put(f"/apis/{api['id']}/deactivate")).status_code == 200
    assert (await node.admin.delete(f"/apis/{api['id']}")).status_code in (200, 204)
    for kind, name in (("truststore", "TestCAs"), ("keystore", "ClientKeys")):
        assert (await node.admin.delete(f"/is/{kind}/{name}")).status_code == 200
