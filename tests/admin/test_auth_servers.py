"""Authorization servers and providers as aliases: ``local`` (settings, signing key from a keystore,
rotation, stable kid), EXTERNAL servers filled by discovery from a second Portico node and used to
validate its tokens, providers and what may not be deleted."""

from __future__ import annotations

import datetime
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import RSAKey

from portico.oauth.runtime import EXTRAS, OAuthView
from portico.oauth.validate import TokenError
from tests.admin.test_keystores import upload
from tests.support.keystores import P12_PASS, TWO_KEY_PASSES, TWO_STORE_PASS, Fixtures, keystore_fixtures
from tests.support.node import ADMIN, Node, running_node
from tests.support.oauth_server import running_oauth_server


@pytest.fixture(scope="module")
def fx() -> Fixtures:
    return keystore_fixtures()


async def local(node: Node) -> dict[str, Any]:
    r = await node.admin.get("/alias/local")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["alias"]
    return body


async def signer_keystore(node: Node, fx: Fixtures) -> None:
    r = await upload(node, "keystore", "Signing", fx.read("keytool.p12"), keyStoreType="PKCS12",
                     keyStorePassword=P12_PASS, pkAliasesList="signer", uploadFileName="keytool.p12")
    assert r.status_code == 200, r.text


async def test_local_defaults_and_listing(sqlite_node: Node) -> None:
    body = await local(sqlite_node)
    assert body["authServerType"] == "LOCAL_IS" and body["type"] == "authServerAlias"
    assert body["tokenGeneratorConfig"] == {"expiry": 60, "algorithm": "RS256", "audience": "",
                                            "accessTokenExpInterval": 3600, "authCodeExpInterval": 600,
                                            "refreshTokenExpInterval": 2592000, "enforcePKCE": False}
    assert body["localIntrospectionConfig"]["issuer"] == "Portico"
    names = {a["name"]: a["type"] for a in (await sqlite_node.admin.get("/alias")).json()["alias"]}
    assert names == {"local": "authServerAlias", "PingFederate": "clientMetadataMapping",
                     "OKTA": "clientMetadataMapping"}


@pytest.mark.parametrize(("change", "field"), [
    ({"tokenGeneratorConfig": {"algorithm": "HS256"}}, "tokenGeneratorConfig.algorithm"),
    ({"tokenGeneratorConfig": {"expiry": 0}}, "tokenGeneratorConfig.expiry"),
    ({"tokenGeneratorConfig": {"accessTokenExpInterval": -2}}, "accessTokenExpInterval"),
    ({"tokenGeneratorConfig": {"authCodeExpInterval": 0}}, "authCodeExpInterval"),
    ({"sslConfig": {"keyStoreAlias": "Signing"}}, "sslConfig"),
    ({"sslConfig": {"keyStoreAlias": "Nope", "keyAlias": "x"}}, "sslConfig"),
    ({"name": "renamed"}, "authServerType"),
    ({"authServerType": "EXTERNAL"}, "name"),
    ({"scopes": [{"name": "a b"}]}, "scopes"),
    ({"scopes": [{"name": "a"}, {"name": "a"}]}, "scopes"),
    ({"localIntrospectionConfig": {"issuer": " "}}, "issuer"),
    ({"unknownField": 1}, "unknownField"),
])
async def test_local_bad_input_is_400_and_changes_nothing(sqlite_node: Node, change: dict[str, Any],
                                                          field: str) -> None:
    before = await local(sqlite_node)
    r = await sqlite_node.admin.put("/alias/local", json={**before, **change})
    assert r.status_code == 400, r.text
    assert field in r.json()["errorDetails"]
    assert await local(sqlite_node) == before


async def test_local_cannot_be_deleted(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.delete("/alias/local")
    assert r.status_code == 400 and "built-in" in r.json()["errorDetails"]


async def test_local_settings_apply(sqlite_node: Node) -> None:
    body = await local(sqlite_node)
    body["tokenGeneratorConfig"].update(expiry=5, audience="my-apis", algorithm="RS512")
    body["localIntrospectionConfig"]["issuer"] = "https://portico.example"
    body["scopes"] = [{"name": "read", "description": "read things"}]
    r = await sqlite_node.admin.put("/alias/local", json=body)
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient(base_url=sqlite_node.base) as public:
        token = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        jwks = (await public.get("/rest/pub/apigateway/jwt/certs")).json()
    view: OAuthView = sqlite_node.portico.gateway.snapshot.extras[EXTRAS]  # type: ignore[union-attr]
    server, verified = await view.verify_jwt(token)
    assert server.name == "local" and verified.claims["aud"] == "my-apis"
    assert verified.expires_at is not None and verified.expires_at - verified.claims["iat"] == 300
    assert jwks["keys"][0]["alg"] == "RS512"


async def test_signing_key_from_a_keystore_rotation_and_stable_kid(sqlite_url: str, tmp_path: Path,
                                                                   fx: Fixtures) -> None:
    async with running_node(sqlite_url, tmp_path / "data") as node, \
            httpx.AsyncClient(base_url=node.base) as public:
        builtin_kid = (await public.get("/oauth2/jwks")).json()["keys"][0]["kid"]
        old_token = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        # an EC key cannot sign RS256
        r = await upload(node, "keystore", "EcKeys", fx.read("two.jks"), keyStoreType="JKS",
                         keyStorePassword=TWO_STORE_PASS, pkAliasesList="first",
                         pkPasswordsList=TWO_KEY_PASSES["first"], uploadFileName="two.jks")
        assert r.status_code == 200, r.text
        body = await local(node)
        r = await node.admin.put("/alias/local", json={**body, "sslConfig": {"keyStoreAlias": "EcKeys",
                                                                             "keyAlias": "first"}})
        assert r.status_code == 400 and "RSA" in r.json()["errorDetails"]
        await signer_keystore(node, fx)
        r = await node.admin.put("/alias/local", json={**body, "sslConfig": {"keyStoreAlias": "Signing",
                                                                             "keyAlias": "signer"}})
        assert r.status_code == 200, r.text
        kids = [k["kid"] for k in (await public.get("/oauth2/jwks")).json()["keys"]]
        assert len(kids) == 2 and kids[1] == builtin_kid  # the old key stays until its JWTs expire
        new_kid = kids[0]
        new_token = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        view: OAuthView = node.portico.gateway.snapshot.extras[EXTRAS]  # type: ignore[union-attr]
        await view.verify_jwt(old_token)
        await view.verify_jwt(new_token)
        # the keystore is in use: it cannot be deleted
        r = await node.admin.delete("/is/keystore/Signing")
        assert r.status_code == 400 and "local" in r.json()["errorDetails"]
    async with running_node(sqlite_url, tmp_path / "data") as node, \
            httpx.AsyncClient(base_url=node.base) as public:
        assert (await public.get("/oauth2/jwks")).json()["keys"][0]["kid"] == new_kid


async def test_external_server_by_discovery_from_a_second_node(sqlite_node: Node, tmp_path: Path) -> None:
    async with running_node(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b") as other, \
            httpx.AsyncClient(base_url=other.base) as b_public:
        b_local = await local(other)
        b_local["localIntrospectionConfig"]["issuer"] = other.base  # discovery wants the URL it is served at
        assert (await other.admin.put("/alias/local", json=b_local)).status_code == 200
        # on B: a client for A's introspection, and an application's client
        r = await other.admin.post("/strategies", json={"name": "introspector", "type": "OAUTH2",
                                                        "authServerAlias": "local",
                                                        "dcrConfig": {"allowedGrantTypes": ["client_credentials"]}})
        introspector = r.json()["strategy"]["clientRegistration"]
        r = await other.admin.post("/strategies", json={"name": "app", "type": "OAUTH2", "authServerAlias": "local",
                                                        "dcrConfig": {"allowedGrantTypes": ["client_credentials"]}})
        app_client = r.json()["strategy"]["clientRegistration"]
        # on A: B as an EXTERNAL server, filled from B's metadata
        r = await sqlite_node.admin.post("/alias", json={
            "name": "nodeB", "type": "authServerAlias", "authServerType": "EXTERNAL",
            "discoveryURL": f"{other.base}/.well-known/openid-configuration",
            "remoteIntrospectionConfig": {"clientId": introspector["clientId"],
                                          "clientSecret": {"secret": introspector["clientSecret"]}}})
        assert r.status_code == 201, r.text
        server = r.json()["alias"]
        assert server["localIntrospectionConfig"]["issuer"] == other.base
        assert server["localIntrospectionConfig"]["jwksuri"] == f"{other.base}/oauth2/jwks"
        assert server["remoteIntrospectionConfig"]["introspectionEndpoint"] == f"{other.base}/oauth2/introspect"
        assert server["remoteIntrospectionConfig"]["clientSecret"] == {"secret": "********"}
        assert server["metadata"]["accessTokenURL"] == f"{other.base}/oauth2/token"
        assert introspector["clientSecret"] not in (await sqlite_node.admin.get("/alias")).text
        # an application on A identified by B's client id
        r = await sqlite_node.admin.post("/strategies", json={"name": "b-client", "type": "OAUTH2",
                                                              "authServerAlias": "nodeB",
                                                              "clientId": app_client["clientId"]})
        assert r.status_code == 200, r.text
        strategy_id = r.json()["strategy"]["id"]
        r = await sqlite_node.admin.post("/applications", json={"name": "AppOnB", "authStrategyIds": [strategy_id]})
        assert r.status_code in (200, 201), r.text
        app_id = r.json()["id"] if "id" in r.json() else r.json()["applications"][0]["id"]
        await sqlite_node.reload()
        view: OAuthView = sqlite_node.portico.gateway.snapshot.extras[EXTRAS]  # type: ignore[union-attr]
        # B's opaque access token: remote introspection at B
        token = (await b_public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                     auth=(app_client["clientId"], app_client["clientSecret"]))).json()
        identified = await view.identify_oauth2(token["access_token"])
        assert identified.server == "nodeB" and identified.application_ids == (app_id,)
        # B's JWT: local introspection with B's JWKS
        jwt = (await b_public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        server_view, verified = await view.verify_jwt(jwt)
        assert server_view.name == "nodeB" and verified.issuer == other.base
        # revoked at B: inactive on A once the short cache has passed (a new token is not cached yet)
        token2 = (await b_public.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                      auth=(app_client["clientId"], app_client["clientSecret"]))).json()
        await b_public.post("/oauth2/revoke", data={"token": token2["access_token"]},
                            auth=(app_client["clientId"], app_client["clientSecret"]))
        with pytest.raises(TokenError):
            await view.identify_oauth2(token2["access_token"])
        # in use by a strategy: neither deleted nor renamed
        r = await sqlite_node.admin.delete(f"/alias/{server['id']}")
        assert r.status_code == 400 and "b-client" in r.json()["errorDetails"]
        r = await sqlite_node.admin.put(f"/alias/{server['id']}", json={**server, "name": "renamed"})
        assert r.status_code == 400


@pytest.mark.parametrize(("body", "field"), [
    ({"discoveryURL": "http://127.0.0.1:9/.well-known/openid-configuration"}, "discoveryURL"),
    ({"discoveryURL": "not a url"}, "discoveryURL"),
    ({}, "validate tokens"),
    ({"localIntrospectionConfig": {"jwksuri": "http://127.0.0.1:9/jwks"}}, "issuer"),
    ({"localIntrospectionConfig": {"issuer": "x", "trustStoreAlias": "Nope", "certificateAlias": "c"}},
     "localIntrospectionConfig"),
    ({"remoteIntrospectionConfig": {"introspectionEndpoint": "http://127.0.0.1:9/i"}}, "clientId"),
    ({"name": "local"}, "name"),
    ({"supportedGrantTypes": ["magic"]}, "supportedGrantTypes"),
    ({"localIntrospectionConfig": {"issuer": "x", "jwksuri": "http://127.0.0.1:9/j"}, "providerName": "Nope"},
     "providerName"),
])
async def test_external_bad_input(sqlite_node: Node, body: dict[str, Any], field: str) -> None:
    r = await sqlite_node.admin.post("/alias", json={"name": "ext", "type": "authServerAlias",
                                                     "authServerType": "EXTERNAL", **body})
    assert r.status_code == 400, r.text
    assert field in r.json()["errorDetails"]
    assert "ext" not in {a["name"] for a in (await sqlite_node.admin.get("/alias")).json()["alias"]}


async def test_providers(sqlite_node: Node) -> None:
    r = await sqlite_node.admin.post("/alias", json={"name": "Acme", "type": "clientMetadataMapping",
                                                     "implNames": {"client_id": "id", "redirect_uris": "callbacks"},
                                                     "extendedValuesV2": [{"endpointType": "CLIENT_REGISTRATION",
                                                                           "key": "tenant", "value": "t1"}],
                                                     "supportedApplicationTypes": ["service"]})
    assert r.status_code == 201, r.text
    provider = r.json()["alias"]
    assert provider["supportedApplicationTypes"] == ["web", "native", "service"]
    bad = await sqlite_node.admin.post("/alias", json={"name": "Bad", "type": "clientMetadataMapping",
                                                       "implNames": {"colour": "x"}})
    assert bad.status_code == 400 and "colour" in bad.json()["errorDetails"]
    r = await sqlite_node.admin.post("/alias", json={
        "name": "AcmeAS", "type": "authServerAlias", "authServerType": "EXTERNAL", "providerName": "Acme",
        "localIntrospectionConfig": {"issuer": "acme", "jwksuri": "http://127.0.0.1:9/jwks"},
        "dcrEndpoint": {"clientRegistrationEndpoint": {"endpoint": "http://127.0.0.1:9/register"},
                        "authInfo": {"type": "BASIC", "username": "u", "password": "pw-secret"}}})
    assert r.status_code == 201, r.text
    assert r.json()["alias"]["dcrEndpoint"]["authInfo"]["password"] == {"secret": "********"}
    assert "pw-secret" not in (await sqlite_node.admin.get("/alias")).text
    r = await sqlite_node.admin.delete(f"/alias/{provider['id']}")
    assert r.status_code == 400 and "AcmeAS" in r.json()["errorDetails"]
    # the shipped presets can be deleted when unused
    assert (await sqlite_node.admin.delete("/alias/OKTA")).status_code == 204


async def test_local_introspection_by_a_truststore_certificate(sqlite_node: Node, fx: Fixtures) -> None:
    """No JWKS URI: the issuer's certificate from a truststore verifies its tokens."""
    key, cert, _ = pkcs12.load_key_and_certificates(fx.read("server.p12"), P12_PASS.encode())
    assert key is not None and cert is not None
    pem = cert.public_bytes(serialization.Encoding.PEM)
    r = await upload(sqlite_node, "truststore", "IssuerCerts", pem, keyStoreType="PEM")
    assert r.status_code == 200, r.text
    r = await sqlite_node.admin.post("/alias", json={
        "name": "certIssuer", "type": "authServerAlias", "authServerType": "EXTERNAL",
        "localIntrospectionConfig": {"issuer": "cert-issuer", "trustStoreAlias": "IssuerCerts",
                                     "certificateAlias": "localhost"}})
    assert r.status_code == 201, r.text
    await sqlite_node.reload()
    view: OAuthView = sqlite_node.portico.gateway.snapshot.extras[EXTRAS]  # type: ignore[union-attr]
    now = int(time.time())
    signer = RSAKey.import_key(key)  # type: ignore[arg-type]
    token = jwt.encode({"alg": "RS256"}, {"iss": "cert-issuer", "sub": "x", "exp": now + 60}, signer)
    server, verified = await view.verify_jwt(token)
    assert server.name == "certIssuer" and verified.subject == "x"
    other = RSAKey.generate_key(2048)
    forged = jwt.encode({"alg": "RS256"}, {"iss": "cert-issuer", "sub": "x", "exp": now + 60}, other)
    with pytest.raises(TokenError):
        await view.verify_jwt(forged)
    # the truststore is in use now
    r = await sqlite_node.admin.delete("/is/truststore/IssuerCerts")
    assert r.status_code == 400 and "certIssuer" in r.json()["errorDetails"]


def _p12(alias: str, password: str, key: Any = None) -> bytes:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, alias)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    return pkcs12.serialize_key_and_certificates(alias.encode(), key, cert, None,
                                                 serialization.BestAvailableEncryption(password.encode()))


async def test_a_signing_keystore_in_use_stays_usable_and_rotates(sqlite_node: Node) -> None:
    node = sqlite_node
    r = await upload(node, "keystore", "Signing", _p12("signer", "pw"), keyStoreType="PKCS12",
                     keyStorePassword="pw", pkAliasesList="signer")
    assert r.status_code == 200, r.text
    body = await local(node)
    r = await node.admin.put("/alias/local", json={**body, "sslConfig": {"keyStoreAlias": "Signing",
                                                                         "keyAlias": "signer"}})
    assert r.status_code == 200, r.text
    async with httpx.AsyncClient(base_url=node.base) as public:
        old_kid = (await public.get("/oauth2/jwks")).json()["keys"][0]["kid"]
        old_jwt = (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).json()["jwt"]
        # replacements that would break the signing key are refused, naming the user
        ec_key = ec.generate_private_key(ec.SECP256R1())
        for file, fields in ((_p12("signer", "pw"), {"keyStorePassword": "wrong"}),
                             (_p12("signer", "pw", ec_key), {"keyStorePassword": "pw"}),
                             (_p12("other", "pw"), {"keyStorePassword": "pw", "pkAliasesList": "other"})):
            r = await upload(node, "keystore", "Signing", file, path="/is/keystore/Signing", keyStoreType="PKCS12",
                             **fields)
            assert r.status_code == 400, r.text
            assert "authorization server 'local'" in r.json()["errorDetails"]
        assert (await node.admin.get("/is/keystore/Signing")).json()["keystores"][0]["isLoaded"] is True
        assert (await public.get("/rest/pub/apigateway/jwt/getJsonWebToken", auth=ADMIN)).status_code == 200
        # a new key under the same alias: the old one stays published until its JWTs expire
        r = await upload(node, "keystore", "Signing", _p12("signer", "pw"), path="/is/keystore/Signing",
                         keyStoreType="PKCS12", keyStorePassword="pw", pkAliasesList="signer")
        assert r.status_code == 200, r.text
        kids = [k["kid"] for k in (await public.get("/oauth2/jwks")).json()["keys"]]
        assert kids[0] != old_kid and old_kid in kids
        await node.reload()
        view: OAuthView = node.portico.gateway.snapshot.extras[EXTRAS]  # type: ignore[union-attr]
        await view.verify_jwt(old_jwt)


async def test_a_truststore_in_use_keeps_its_certificate(sqlite_node: Node, fx: Fixtures) -> None:
    node = sqlite_node
    _, cert, _ = pkcs12.load_key_and_certificates(fx.read("server.p12"), P12_PASS.encode())
    assert cert is not None
    issuer_pem = cert.public_bytes(serialization.Encoding.PEM)
    assert (await upload(node, "truststore", "Issuers", issuer_pem, keyStoreType="PEM")).status_code == 200
    r = await node.admin.post("/alias", json={
        "name": "byCert", "type": "authServerAlias", "authServerType": "EXTERNAL",
        "localIntrospectionConfig": {"issuer": "cert-issuer", "trustStoreAlias": "Issuers",
                                     "certificateAlias": "localhost"}})
    assert r.status_code == 201, r.text
    other_pem = fx.other_ca.public_bytes(serialization.Encoding.PEM)
    r = await upload(node, "truststore", "Issuers", other_pem, path="/is/truststore/Issuers", keyStoreType="PEM")
    assert r.status_code == 400 and "byCert" in r.json()["errorDetails"] and "localhost" in r.json()["errorDetails"]
    r = await upload(node, "truststore", "Issuers", issuer_pem + other_pem, path="/is/truststore/Issuers",
                     keyStoreType="PEM")
    assert r.status_code == 200, r.text


def server_tls(fx: Fixtures, tmp_path: Path) -> ssl.SSLContext:
    """A server context with the test CA's ``localhost`` certificate."""
    key, cert, chain = pkcs12.load_key_and_certificates(fx.read("server.p12"), P12_PASS.encode())
    assert key is not None and cert is not None
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in chain))
    (tmp_path / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    return tls


async def test_outbound_clients_see_a_replaced_truststore(sqlite_node: Node, fx: Fixtures, tmp_path: Path) -> None:
    """Over HTTPS, JWKS keys come through a client built from the truststore: replacing the
    truststore (same name) must be seen at once, not when the process restarts."""
    node = sqlite_node
    with running_oauth_server(server_tls(fx, tmp_path)) as ext:
        other_pem = fx.other_ca.public_bytes(serialization.Encoding.PEM)
        assert (await upload(node, "truststore", "Outbound", other_pem, keyStoreType="PEM")).status_code == 200
        r = await node.admin.post("/alias", json={
            "name": "tlsServer", "type": "authServerAlias", "authServerType": "EXTERNAL",
            "sslConfig": {"trustStoreAlias": "Outbound"},
            "localIntrospectionConfig": {"issuer": ext.issuer, "jwksuri": f"{ext.issuer}/jwks"}})
        assert r.status_code == 201, r.text
        await node.reload()
        assert node.portico.gateway is not None
        view: OAuthView = node.portico.gateway.snapshot.extras[EXTRAS]
        with pytest.raises(TokenError):  # the server's CA is not trusted yet
            await view.verify_jwt(ext.sign())
        r = await upload(node, "truststore", "Outbound", fx.read("ca.pem"), path="/is/truststore/Outbound",
                         keyStoreType="PEM")
        assert r.status_code == 200, r.text
        await node.reload()
        view = node.portico.gateway.snapshot.extras[EXTRAS]
        assert (await view.verify_jwt(ext.sign()))[0].name == "tlsServer"


async def test_outbound_clients_see_a_truststore_made_again(sqlite_url: str, fx: Fixtures, tmp_path: Path) -> None:
    """A truststore deleted and uploaded again under the same name starts again at revision 1; a
    node that did not rebuild in between must not keep the client built from the old store."""
    with running_oauth_server(server_tls(fx, tmp_path)) as ext:
        async with running_node(sqlite_url, tmp_path / "data") as a, \
                running_node(sqlite_url, tmp_path / "data") as b:
            assert b.portico.reloader is not None
            await b.portico.reloader.stop()  # b rebuilds only when told: it misses the steps in between
            assert (await upload(a, "truststore", "Outbound", fx.read("ca.pem"), keyStoreType="PEM")).is_success
            server = {"name": "tlsServer", "type": "authServerAlias", "authServerType": "EXTERNAL",
                      "sslConfig": {"trustStoreAlias": "Outbound"},
                      "localIntrospectionConfig": {"issuer": ext.issuer, "jwksuri": f"{ext.issuer}/jwks"}}
            r = await a.admin.post("/alias", json=server)
            assert r.status_code == 201, r.text
            alias_id = r.json()["alias"]["id"]
            await b.reload()
            assert b.portico.gateway is not None
            view: OAuthView = b.portico.gateway.snapshot.extras[EXTRAS]
            assert (await view.verify_jwt(ext.sign()))[0].name == "tlsServer"
            r = await a.admin.put(f"/alias/{alias_id}", json={**server, "sslConfig": {}})
            assert r.status_code == 200, r.text
            assert (await a.admin.delete("/is/truststore/Outbound")).status_code == 200
            other_pem = fx.other_ca.public_bytes(serialization.Encoding.PEM)
            assert (await upload(a, "truststore", "Outbound", other_pem, keyStoreType="PEM")).is_success
            r = await a.admin.put(f"/alias/{alias_id}", json=server)
            assert r.status_code == 200, r.text
            await b.reload()
            view = b.portico.gateway.snapshot.extras[EXTRAS]
            with pytest.raises(TokenError):  # the new Outbound does not know the server's CA
                await view.verify_jwt(ext.sign())


async def test_discovery_urls_and_issuers_are_checked(sqlite_node: Node) -> None:
    node = sqlite_node
    for url in ("http://[::1", "http://127.0.0.1:99999/x", "ftp://example.com/x"):
        r = await node.admin.post("/alias", json={"name": "bad", "type": "authServerAlias", "discoveryURL": url})
        assert r.status_code == 400 and "discoveryURL" in r.json()["errorDetails"], r.text
    with running_oauth_server() as ext:
        ext.metadata_issuer = "https://impostor.example"
        r = await node.admin.post("/alias", json={
            "name": "liar", "type": "authServerAlias",
            "discoveryURL": f"{ext.issuer}/.well-known/openid-configuration"})
        assert r.status_code == 400 and "impostor" in r.json()["errorDetails"]
        ext.metadata_issuer = None
        r = await node.admin.post("/alias", json={
            "name": "honest", "type": "authServerAlias",
            "discoveryURL": f"{ext.issuer}/.well-known/openid-configuration"})
        assert r.status_code == 201, r.text
        # one issuer, one server: the second is refused, naming the first
        r = await node.admin.post("/alias", json={
            "name": "twin", "type": "authServerAlias",
            "localIntrospectionConfig": {"issuer": ext.issuer, "jwksuri": f"{ext.issuer}/jwks"}})
        assert r.status_code == 400 and "'honest'" in r.json()["errorDetails"]
        body = await local(node)
        body["localIntrospectionConfig"]["issuer"] = ext.issuer
        r = await node.admin.put("/alias/local", json=body)
        assert r.status_code == 400 and "'honest'" in r.json()["errorDetails"]


@pytest.mark.parametrize("config", [{"issuer": "x", "jwksuri": "http://127.0.0.1:9/j", "clockSkew": True},
                                    {"issuer": "x", "jwksuri": "http://127.0.0.1:9/j", "description": True},
                                    {"issuer": "x", "jwksuri": "http://127.0.0.1:9/j", "description": "soon"},
                                    {"issuer": "x", "jwksuri": "http://127.0.0.1:9/j", "clockSkew": -1}])
async def test_clock_skew_is_a_whole_number(sqlite_node: Node, config: dict[str, Any]) -> None:
    r = await sqlite_node.admin.post("/alias", json={"name": "skew", "type": "authServerAlias",
                                                     "localIntrospectionConfig": config})
    assert r.status_code == 400, r.text
    assert "clockSkew" in r.json()["errorDetails"] or "description" in r.json()["errorDetails"]


async def test_deleted_presets_come_back_and_the_public_url_is_the_issuer(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_PUBLIC_URL", "https://gateway.example/")
    async with running_node(sqlite_url, tmp_path / "data") as node:
        assert (await local(node))["localIntrospectionConfig"]["issuer"] == "https://gateway.example"
        assert (await node.admin.delete("/alias/OKTA")).status_code == 204
        assert (await node.admin.get("/alias/OKTA")).status_code == 404
    async with running_node(sqlite_url, tmp_path / "data") as node:
        r = await node.admin.get("/alias/OKTA")
        assert r.status_code == 200 and r.json()["alias"]["providerName"] == "OKTA"


async def test_a_keystore_signing_key_is_imported_once_per_keystore_version(sqlite_node: Node) -> None:
    """``local``'s key from a keystore is opened and checked once, not at every snapshot build: the
    same key object while the keystore is unchanged, a new one once it is replaced, or deleted and
    uploaded again under the same name (back at revision 1)."""
    from portico.oauth.signing import load_local, signing_key

    node = sqlite_node
    store, box = node.portico.store, node.portico.secrets

    async def current() -> Any:
        async with store.read() as tx:
            return await signing_key(tx, box, await load_local(tx))

    async def use_keystore(ssl_config: dict[str, str]) -> None:
        r = await node.admin.put("/alias/local", json={**await local(node), "sslConfig": ssl_config})
        assert r.status_code == 200, r.text

    r = await upload(node, "keystore", "Signing", _p12("signer", "pw"), keyStoreType="PKCS12",
                     keyStorePassword="pw", pkAliasesList="signer")
    assert r.status_code == 200, r.text
    await use_keystore({"keyStoreAlias": "Signing", "keyAlias": "signer"})
    first = await current()
    await node.reload()  # a snapshot build (the JWKS of the local server) uses the same key
    assert (await current()).key is first.key and first.source == "Signing/signer"
    r = await upload(node, "keystore", "Signing", _p12("signer", "pw"), path="/is/keystore/Signing",
                     keyStoreType="PKCS12", keyStorePassword="pw", pkAliasesList="signer")
    assert r.status_code == 200, r.text
    replaced = await current()
    assert replaced.kid != first.kid and (await current()).key is replaced.key
    await use_keystore({})
    assert (await node.admin.delete("/is/keystore/Signing")).status_code == 200
    r = await upload(node, "keystore", "Signing", _p12("signer", "pw"), keyStoreType="PKCS12",
                     keyStorePassword="pw", pkAliasesList="signer")
    assert r.status_code == 200, r.text
    await use_keystore({"keyStoreAlias": "Signing", "keyAlias": "signer"})
    made_again = await current()
    assert made_again.kid not in (first.kid, replaced.kid)
    async with httpx.AsyncClient(base_url=node.base) as public:
        assert (await public.get("/oauth2/jwks")).json()["keys"][0]["kid"] == made_again.kid
