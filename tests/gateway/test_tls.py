"""TLS with real handshakes (issue 5 section 2): the HTTPS listener (gateway and management API),
client certificates none / optional / required, identification by ``httpsCertificate`` and by the
``customCertificateHeader``, a keystore change taking effect without a restart, native services over
https trusted or not (502 and an event saying why), and two-way TLS to a native service."""

from __future__ import annotations

import asyncio
import base64
import signal
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

from portico.gateway.tls import HEARTBEAT_ENV, STALE_AFTER_BEATS, HttpsOptions
from tests.admin.test_keystores import pem_trust, server_jks, upload
from tests.gateway.test_runtime import add_action, new_app, rules
from tests.support.keystores import P12_PASS, Fixtures, keystore_fixtures
from tests.support.node import ADMIN, Node, running_node
from tests.support.process import free_port, spawn, wait_healthy
from tests.support.upstream import running_upstream, spec_for


@pytest.fixture(scope="module")
def fx() -> Fixtures:
    return keystore_fixtures()


def client_files(fx: Fixtures, tmp_path: Path) -> tuple[str, str, bytes]:
    """The test client's certificate and key as PEM files, and the certificate's PEM."""
    key, cert, _ = pkcs12.load_key_and_certificates(fx.read("client.p12"), P12_PASS.encode())
    assert key is not None and cert is not None
    cert_pem = cert.public_bytes(Encoding.PEM)
    (tmp_path / "client.pem").write_bytes(cert_pem)
    (tmp_path / "client.key").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return str(tmp_path / "client.pem"), str(tmp_path / "client.key"), cert_pem


def client_ssl(fx: Fixtures, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(fx.path("ca.pem")))
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


async def https_client(node: Node, context: ssl.SSLContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"https://localhost:{node.portico.https_port}", verify=context, timeout=10)


@pytest.fixture
async def keyed(sqlite_url: str, tmp_path: Path, fx: Fixtures) -> AsyncIterator[str]:
    """A data directory whose store holds the server keystore and the test CA truststore, set as
    the inbound defaults (the HTTPS listener's stores unless told otherwise)."""
    async with running_node(sqlite_url, tmp_path / "data") as node:
        await server_jks(node, fx)
        await pem_trust(node, fx)
        r = await node.admin.put("/configurations/keystore", json={
            "keystoreName": "ServerKeys", "signingAlias": "server", "truststoreName": "TestCAs"})
        assert r.status_code == 200, r.text
    yield sqlite_url


def _node(sqlite_url: str, tmp_path: Path, client_auth: str = "none", **https: Any) -> Any:
    return running_node(sqlite_url, tmp_path / "data", https_port=0,
                        https=HttpsOptions(client_auth=client_auth, **https))  # type: ignore[arg-type]


async def test_https_listener_serves_gateway_and_management(keyed: str, tmp_path: Path, fx: Fixtures) -> None:
    with running_upstream() as up:
        async with _node(keyed, tmp_path) as node:
            await node.create_api(spec_for(up.url))
            async with await https_client(node, client_ssl(fx)) as client:
                r = await client.get("/gateway/Echo/1.0/echo")
                assert r.status_code == 200, r.text
                assert r.json()["headers"]["x-forwarded-proto"] == "https"
                apis = await client.get("/rest/apigateway/apis", auth=ADMIN)
                assert apis.status_code == 200 and apis.json()["apiResponse"]
            # the plain listener is unchanged
            assert (await node.gw.get("/Echo/1.0/echo")).json()["headers"]["x-forwarded-proto"] == "http"
            # a client that does not trust the test CA refuses the server's certificate
            async with await https_client(node, ssl.create_default_context()) as stranger:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await stranger.get("/gateway/Echo/1.0/echo")


async def test_client_certificate_required(keyed: str, tmp_path: Path, fx: Fixtures) -> None:
    cert, key, _ = client_files(fx, tmp_path)
    async with _node(keyed, tmp_path, "required") as node:
        async with await https_client(node, client_ssl(fx)) as anonymous:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await anonymous.get("/rest/apigateway/health")
        async with await https_client(node, client_ssl(fx, (cert, key))) as client:
            assert (await client.get("/rest/apigateway/apis", auth=ADMIN)).status_code == 200


async def test_own_keystore_with_the_default_truststore(keyed: str, tmp_path: Path, fx: Fixtures) -> None:
    """--https-keystore without --https-truststore: client certificates are checked against the
    default truststore (truststoreName of /configurations/keystore), as the option's help says."""
    cert, key, _ = client_files(fx, tmp_path)
    async with running_node(keyed, tmp_path / "data") as node:
        await server_jks(node, fx, "ListenerKeys")
    async with _node(keyed, tmp_path, "required", keystore="ListenerKeys", key_alias="server") as node:
        assert node.portico.listener_tls is not None and node.portico.listener_tls.problem is None
        async with await https_client(node, client_ssl(fx, (cert, key))) as client:
            assert (await client.get("/rest/apigateway/apis", auth=ADMIN)).status_code == 200


async def test_client_certificate_optional_identifies_the_application(keyed: str, tmp_path: Path,
                                                                      fx: Fixtures) -> None:
    cert, key, cert_pem = client_files(fx, tmp_path)
    with running_upstream() as up:
        async with _node(keyed, tmp_path, "optional") as node:
            api = await node.create_api(spec_for(up.url))
            await add_action(node, api, "evaluatePolicy", "IAM", rules("httpsCertificate"))
            # The reference's shape: base64 of the PEM text.
            app = await new_app(node, [api["id"]], name="cert-holder", identifiers=[
                {"key": "httpsCertificate", "name": "client.pem", "value": [base64.b64encode(cert_pem).decode()]}])
            await node.reload()
            async with await https_client(node, client_ssl(fx, (cert, key))) as client:
                r = await client.get("/gateway/Echo/1.0/echo")
                assert r.status_code == 200, r.text
            async with await https_client(node, client_ssl(fx)) as anonymous:
                r = await anonymous.get("/gateway/Echo/1.0/echo")  # optional: the handshake succeeds
                assert r.status_code == 403 and "identify" in r.text
            # Plain HTTP has no certificate, and the header is not trusted until configured.
            assert (await node.gw.get("/Echo/1.0/echo")).status_code == 403
            forged = {"X-Client-Cert": quote(cert_pem.decode())}
            assert (await node.gw.get("/Echo/1.0/echo", headers=forged)).status_code == 403
            await node.portico.events.flush()
            day = time.strftime("%Y-%m-%d", time.gmtime())
            events = (await node.admin.get("/transactionalEvents/_search", params={
                "apiId": api["id"], "fromDate": day, "toDate": day})).json()["transaction"]
            assert [e.get("applicationName") for e in events if e["responseCode"] == "200"] == [app["name"]]


async def test_custom_certificate_header_behind_a_load_balancer(sqlite_node: Node, fx: Fixtures,
                                                               tmp_path: Path) -> None:
    node = sqlite_node
    _, _, cert_pem = client_files(fx, tmp_path)
    with running_upstream() as up:
        api = await node.create_api(spec_for(up.url))
        await add_action(node, api, "evaluatePolicy", "IAM", rules("httpsCertificate"))
        await new_app(node, [api["id"]], identifiers=[
            {"key": "httpsCertificate", "name": "client", "value": [cert_pem.decode()]}])
        r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
            "extendedKeys": {"customCertificateHeader": "X-SSL-Client-Cert"}}})
        assert r.status_code == 200, r.text
        await node.reload()
        spaced = cert_pem.decode().strip().replace("\n", " ")  # how some load balancers forward it
        for value in (quote(cert_pem.decode()), base64.b64encode(cert_pem).decode(), spaced):
            ok = await node.gw.get("/Echo/1.0/echo", headers={"X-SSL-Client-Cert": value})
            assert ok.status_code == 200, ok.text
        other = fx.ca.public_bytes(Encoding.PEM).decode()
        assert (await node.gw.get("/Echo/1.0/echo", headers={"X-SSL-Client-Cert": quote(other)})).status_code == 403
        assert (await node.gw.get("/Echo/1.0/echo", headers={"X-SSL-Client-Cert": "garbage"})).status_code == 403


async def test_certificate_verified_on_the_connection_wins_over_the_header(keyed: str, tmp_path: Path,
                                                                           fx: Fixtures) -> None:
    """The customCertificateHeader is for a load balancer that terminated TLS. A caller reaching the
    HTTPS listener with a client certificate of its own cannot claim someone else's in the header."""
    cert, key, cert_pem = client_files(fx, tmp_path)
    other_pem = fx.server_cert.public_bytes(Encoding.PEM)
    with running_upstream() as up:
        async with _node(keyed, tmp_path, "optional") as node:
            api = await node.create_api(spec_for(up.url))
            await add_action(node, api, "evaluatePolicy", "IAM", rules("httpsCertificate"))
            await new_app(node, [api["id"]], name="holder", identifiers=[
                {"key": "httpsCertificate", "name": "client", "value": [cert_pem.decode()]}])
            victim = await new_app(node, [api["id"]], name="victim", identifiers=[
                {"key": "httpsCertificate", "name": "server", "value": [other_pem.decode()]}])
            r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
                "extendedKeys": {"customCertificateHeader": "X-SSL-Client-Cert"}}})
            assert r.status_code == 200, r.text
            await node.reload()
            claim = {"X-SSL-Client-Cert": quote(other_pem.decode())}
            async with await https_client(node, client_ssl(fx, (cert, key))) as client:
                assert (await client.get("/gateway/Echo/1.0/echo", headers=claim)).status_code == 200
            async with await https_client(node, client_ssl(fx)) as no_certificate:  # a load balancer
                assert (await no_certificate.get("/gateway/Echo/1.0/echo", headers=claim)).status_code == 200
            await node.portico.events.flush()
            day = time.strftime("%Y-%m-%d", time.gmtime())
            events = (await node.admin.get("/transactionalEvents/_search", params={
                "apiId": api["id"], "fromDate": day, "toDate": day})).json()["transaction"]
            names = sorted(e.get("applicationName") for e in events)
            assert names == ["holder", victim["name"]], names


async def test_https_certificate_identifier_must_be_a_certificate(sqlite_node: Node) -> None:
    """A value that is no certificate would never identify anyone; it is refused when written."""
    for value in ("not a certificate", base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAAAA\n").decode()):
        r = await sqlite_node.admin.post("/applications", json={"name": "bad-cert", "identifiers": [
            {"key": "httpsCertificate", "name": "client", "value": [value]}]})
        assert r.status_code == 400, r.text
        assert "identifiers[0]" in r.json()["errorDetails"] and "certificate" in r.json()["errorDetails"]
    assert not [a for a in (await sqlite_node.admin.get("/applications")).json()["applications"]
                if a["name"] == "bad-cert"]


async def test_keystore_change_takes_effect_without_restart(keyed: str, tmp_path: Path, fx: Fixtures) -> None:
    async with _node(keyed, tmp_path) as node:
        async with await https_client(node, client_ssl(fx)) as client:
            assert (await client.get("/rest/apigateway/health")).status_code in (200, 401)
        # Switch the listener to a self-signed key: clients trusting the test CA now refuse it.
        r = await upload(node, "keystore", "Other", fx.read("keytool.p12"), keyStoreType="PKCS12",
                         keyStorePassword=P12_PASS, pkAliasesList="signer", pkPasswordsList=P12_PASS)
        assert r.status_code == 200, r.text
        r = await node.admin.put("/configurations/keystore", json={"keystoreName": "Other", "signingAlias": "signer"})
        assert r.status_code == 200, r.text
        await node.reload()
        async with await https_client(node, client_ssl(fx)) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get("/rest/apigateway/health")
        lenient = ssl.create_default_context()
        lenient.check_hostname, lenient.verify_mode = False, ssl.CERT_NONE
        async with await https_client(node, lenient) as client:
            assert (await client.get("/rest/apigateway/health")).status_code in (200, 401)


async def test_keystore_of_the_listener_cannot_be_deleted(keyed: str, tmp_path: Path, fx: Fixtures) -> None:
    async with running_node(keyed, tmp_path / "data") as node:
        await server_jks(node, fx, "ListenerKeys")
    async with _node(keyed, tmp_path, keystore="ListenerKeys", key_alias="server") as node:
        async with await https_client(node, client_ssl(fx)) as client:
            assert (await client.get("/rest/apigateway/health")).status_code in (200, 401)
        r = await node.admin.delete("/is/keystore/ListenerKeys")
        assert r.status_code == 400 and "HTTPS listener" in r.json()["errorDetails"], r.text
    async with running_node(keyed, tmp_path / "data") as node:  # stopped: the store is free again
        assert (await node.admin.delete("/is/keystore/ListenerKeys")).status_code == 200


async def test_listener_of_a_killed_node_stops_holding_its_keystore(keyed: str, tmp_path: Path,
                                                                    fx: Fixtures) -> None:
    """A node killed without stopping leaves its listener record behind; the record expires after a
    few missed heartbeats, and the keystore can then be deleted."""
    async with running_node(keyed, tmp_path / "data") as node:
        await server_jks(node, fx, "ListenerKeys")
    https_port = free_port()
    proc = spawn(["serve", "--port", str(port := free_port()), "--data-dir", str(tmp_path / "data"), "--db", keyed,
                  "--https-port", str(https_port), "--https-keystore", "ListenerKeys", "--https-key-alias", "server"],
                 {"PORTICO_ADMIN_PASSWORD": "test-secret", HEARTBEAT_ENV: "0.5"})
    try:
        wait_healthy(port, proc)
        async with httpx.AsyncClient(base_url=f"https://localhost:{https_port}", verify=client_ssl(fx)) as client:
            assert (await client.get("/rest/apigateway/health")).status_code in (200, 401)
        async with running_node(keyed, tmp_path / "data") as node:
            await asyncio.sleep(2.0)  # several heartbeats: a live listener keeps its record
            r = await node.admin.delete("/is/keystore/ListenerKeys")
            assert r.status_code == 400 and f"HTTPS listener on port {https_port}" in r.text, r.text
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            killed = time.monotonic()
            while (r := await node.admin.delete("/is/keystore/ListenerKeys")).status_code == 400:
                assert time.monotonic() - killed < 1.5 * STALE_AFTER_BEATS, r.text
                await asyncio.sleep(0.1)
            assert r.status_code == 200, r.text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def upstream_tls(fx: Fixtures, tmp_path: Path, require_client: bool = False) -> ssl.SSLContext:
    key, cert, _ = pkcs12.load_key_and_certificates(fx.read("server.p12"), P12_PASS.encode())
    assert key is not None and cert is not None
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()) + cert.public_bytes(Encoding.PEM)
    (tmp_path / "upstream.pem").write_bytes(pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / "upstream.pem"))
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(fx.path("ca.pem")))
    return context


async def test_native_service_over_https_trusted_and_untrusted(sqlite_node: Node, fx: Fixtures,
                                                              tmp_path: Path) -> None:
    node = sqlite_node
    with running_upstream(upstream_tls(fx, tmp_path)) as up:
        assert up.url.startswith("https://")
        api = await node.create_api(spec_for(up.url))
        # No outbound truststore: the system's CAs, which do not know the test CA.
        r = await node.gw.get("/Echo/1.0/echo")
        assert r.status_code == 502, r.text
        assert "certificate verify failed" in r.text.lower()
        await node.portico.events.flush()
        day = time.strftime("%Y-%m-%d", time.gmtime())
        events = (await node.admin.get("/transactionalEvents/_search", params={
            "apiId": api["id"], "fromDate": day, "toDate": day})).json()["transaction"]
        assert events[0]["errorOrigin"] == "NATIVE_TLS_ERROR"
        assert "certificate verify failed" in events[0]["customFields"]["nativeTlsError"].lower()
        # The test CA as the outbound truststore: the same call goes through.
        await pem_trust(node, fx)
        r = await node.admin.put("/configurations/keystore", json={"outboundTruststoreName": "TestCAs"})
        assert r.status_code == 200, r.text
        await node.reload()
        r = await node.gw.get("/Echo/1.0/echo")
        assert r.status_code == 200, r.text
        # The outbound truststore in use cannot be deleted.
        assert (await node.admin.delete("/is/truststore/TestCAs")).status_code == 400


async def test_two_way_tls_to_a_native_service(sqlite_node: Node, fx: Fixtures, tmp_path: Path) -> None:
    node = sqlite_node
    await pem_trust(node, fx)
    r = await node.admin.put("/configurations/keystore", json={"outboundTruststoreName": "TestCAs"})
    assert r.status_code == 200, r.text
    with running_upstream(upstream_tls(fx, tmp_path, require_client=True)) as up:
        api = await node.create_api(spec_for(up.url))
        # No client key configured: the native side refuses. Under TLS 1.3 the refusal (an alert)
        # arrives after the handshake, on the first read; it is still a TLS failure, with the alert.
        # When our request's write hits the closed socket before the alert is read (a race on a
        # loaded machine), it is still a TLS failure, saying the connection broke after the handshake.
        refused = await node.gw.get("/Echo/1.0/echo")
        assert refused.status_code == 502, refused.text
        assert "CERTIFICATE_REQUIRED" in refused.text or "client certificate" in refused.text, refused.text
        await node.portico.events.flush()
        day = time.strftime("%Y-%m-%d", time.gmtime())
        events = (await node.admin.get("/transactionalEvents/_search", params={
            "apiId": api["id"], "fromDate": day, "toDate": day})).json()["transaction"]
        assert events[0]["errorOrigin"] == "NATIVE_TLS_ERROR", events[0]
        reason = events[0]["customFields"]["nativeTlsError"]
        assert "CERTIFICATE_REQUIRED" in reason or "client certificate" in reason, events[0]
        r = await upload(node, "keystore", "ClientKeys", fx.read("client.p12"), keyStoreType="PKCS12",
                         keyStorePassword=P12_PASS, pkAliasesList="client", pkPasswordsList=P12_PASS)
        assert r.status_code == 200, r.text
        r = await node.admin.put("/configurations/keystore", json={
            "outboundKeystoreName": "ClientKeys", "outboundKeyAlias": "client"})
        assert r.status_code == 200, r.text
        await node.reload()
        ok = await node.gw.get("/Echo/1.0/echo")
        assert ok.status_code == 200, ok.text


async def test_endpoint_alias_brings_its_own_truststore(sqlite_node: Node, fx: Fixtures, tmp_path: Path) -> None:
    node = sqlite_node
    await pem_trust(node, fx, "AliasCAs")
    with running_upstream(upstream_tls(fx, tmp_path)) as up:
        r = await node.admin.post("/alias", json={"name": "secureBackend", "type": "endpoint",
                                                  "endPointURI": up.url, "truststoreAlias": "AliasCAs"})
        assert r.status_code in (200, 201), r.text
        api = await node.create_api(spec_for("http://127.0.0.1:9"))
        await add_action(node, api, "straightThroughRouting", "routing", [
            {"templateKey": "endpointUri", "values": ["${secureBackend}/${sys:resource_path}"]}])
        await node.reload()
        ok = await node.gw.get("/Echo/1.0/echo")
        assert ok.status_code == 200, ok.text  # the default (system CAs) would refuse it
        assert (await node.admin.delete("/is/truststore/AliasCAs")).status_code == 400  # in use by the alias


async def test_endpoint_alias_stores_are_checked(sqlite_node: Node, fx: Fixtures) -> None:
    """An endpoint alias naming a store that does not exist or cannot be used would fail every https
    call through it: 400 naming the field, and nothing stored."""
    node = sqlite_node
    await upload(node, "truststore", "Unloaded", fx.read("trust.jks"), keyStorePassword="wrong-one")
    await upload(node, "keystore", "ClientKeys", fx.read("client.p12"), keyStoreType="PKCS12",
                 keyStorePassword=P12_PASS, pkAliasesList="client", pkPasswordsList=P12_PASS)
    base = {"name": "secureBackend", "type": "endpoint", "endPointURI": "https://127.0.0.1:1"}
    cases = [({"truststoreAlias": "NoSuchCAs"}, "truststoreAlias", "does not exist"),
             ({"truststoreAlias": "Unloaded"}, "truststoreAlias", "not loaded"),
             ({"keystoreAlias": "NoSuchKeys", "keyAlias": "client"}, "keystoreAlias", "does not exist"),
             ({"keystoreAlias": "ClientKeys", "keyAlias": "nobody"}, "keyAlias", "nobody"),
             ({"keyAlias": "client"}, "keyAlias", "keystoreAlias")]
    for fields, field, reason in cases:
        r = await node.admin.post("/alias", json={**base, **fields})
        assert r.status_code == 400, (fields, r.text)
        assert field in r.json()["errorDetails"] and reason in r.json()["errorDetails"], r.text
    assert not [a for a in (await node.admin.get("/alias")).json()["alias"] if a["name"] == "secureBackend"]
    r = await node.admin.post("/alias", json={**base, "keystoreAlias": "ClientKeys", "keyAlias": "client"})
    assert r.status_code in (200, 201), r.text
    r = await node.admin.put(f"/alias/{r.json()['alias']['id']}", json={**base, "truststoreAlias": "Unloaded"})
    assert r.status_code == 400 and "not loaded" in r.json()["errorDetails"], r.text


async def test_store_deleted_and_made_again_is_not_served_from_cache(sqlite_url: str, tmp_path: Path,
                                                                    fx: Fixtures) -> None:
    """A truststore deleted and uploaded again under the same name starts again at revision 1; a
    node that did not rebuild in between must still use the new certificates, not the cached
    context of the old store."""
    with running_upstream(upstream_tls(fx, tmp_path)) as up:
        async with running_node(sqlite_url, tmp_path / "data") as a, \
                running_node(sqlite_url, tmp_path / "data") as b:
            assert b.portico.reloader is not None
            await b.portico.reloader.stop()  # b rebuilds only when told: it misses the steps in between
            await pem_trust(a, fx)  # knows the test CA
            r = await a.admin.put("/configurations/keystore", json={"outboundTruststoreName": "TestCAs"})
            assert r.status_code == 200, r.text
            await a.create_api(spec_for(up.url))
            await b.reload()
            assert (await b.gw.get("/Echo/1.0/echo")).status_code == 200
            assert (await a.admin.put("/configurations/keystore", json={"outboundTruststoreName": None})).is_success
            assert (await a.admin.delete("/is/truststore/TestCAs")).status_code == 200
            r = await upload(a, "truststore", "TestCAs", fx.other_ca.public_bytes(Encoding.PEM), keyStoreType="PEM")
            assert r.status_code == 200, r.text
            r = await a.admin.put("/configurations/keystore", json={"outboundTruststoreName": "TestCAs"})
            assert r.status_code == 200, r.text
            await b.reload()
            r = await b.gw.get("/Echo/1.0/echo")  # the new TestCAs does not know the test CA
            assert r.status_code == 502 and "certificate verify failed" in r.text.lower(), r.text


async def test_custom_certificate_header_must_be_a_header_name(sqlite_node: Node) -> None:
    """A customCertificateHeader that is no header name is refused; it used to be stored and then
    broke every configuration rebuild (hot deploy stopped)."""
    node = sqlite_node
    for bad in ("X-Čert", "X Cert", "X-Cert:"):
        r = await node.admin.put("/configurations/settings", json={"preferredSettings": {
            "extendedKeys": {"customCertificateHeader": bad}}})
        assert r.status_code == 400 and "customCertificateHeader" in r.json()["errorDetails"], (bad, r.text)
    with running_upstream() as up:
        await node.create_api(spec_for(up.url))  # deploys: the configuration still rebuilds
        assert (await node.gw.get("/Echo/1.0/echo")).status_code == 200
