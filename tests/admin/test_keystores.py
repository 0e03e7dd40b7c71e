"""``/is/keystore``, ``/is/truststore`` and ``/configurations/keystore`` through the real API, with
keytool-made stores; secrets never come back and never sit in the database in the clear; TLS
contexts built from the stored stores complete real handshakes."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from portico.security.keystore import KeystoreUnavailable, client_context_for, server_context_for
from portico.security.secrets import KEY_FILE
from tests.security.test_keystores import talk
from tests.support.keystores import (
    JKS_KEY_PASS,
    JKS_STORE_PASS,
    P12_PASS,
    TRUST_PASS,
    TWO_KEY_PASSES,
    TWO_STORE_PASS,
    Fixtures,
    keystore_fixtures,
)
from tests.support.node import Node

SECRETS = [JKS_STORE_PASS, JKS_KEY_PASS, P12_PASS, TRUST_PASS, TWO_STORE_PASS, *TWO_KEY_PASSES.values()]


@pytest.fixture(scope="module")
def fx() -> Fixtures:
    return keystore_fixtures()


async def upload(node: Node, kind: str, name: str, file: bytes, path: str | None = None, **fields: str,
                 ) -> httpx.Response:
    """multipart/form-data as the reference specifies."""
    data = {"keyStoreName": name, **fields} if path is None else dict(fields)
    return await node.admin.post(path or f"/is/{kind}", data=data,
                                 files={"fileContent": (fields.get("uploadFileName", "store.bin"), file,
                                                        "application/octet-stream")})


async def server_jks(node: Node, fx: Fixtures, name: str = "ServerKeys") -> dict[str, Any]:
    r = await upload(node, "keystore", name, fx.read("server.jks"), keyStoreType="JKS",
                     keyStorePassword=JKS_STORE_PASS, pkAliasesList="server", pkPasswordsList=JKS_KEY_PASS,
                     keyStoreDescription="the server's key", uploadFileName="server.jks")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def pem_trust(node: Node, fx: Fixtures, name: str = "TestCAs") -> dict[str, Any]:
    r = await upload(node, "truststore", name, fx.read("bundle.pem"), keyStoreType="PEM")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_no_secrets(text: str, fx: Fixtures) -> None:
    for secret in SECRETS:
        assert secret not in text
    for name in ("server.jks", "two.jks", "server.p12", "client.p12", "trust.jks"):
        assert base64.b64encode(fx.read(name))[:40].decode() not in text


async def test_upload_jks_multipart_and_read_it_back(node: Node, fx: Fixtures) -> None:
    created = await server_jks(node, fx)
    assert created["keyStoreName"] == "ServerKeys" and created["keyStoreType"] == "JKS"
    assert created["keyStoreProvider"] == "SUN" and created["isLoaded"] is True and created["isWarning"] is False
    assert created["pkAliasesList"] == "server" and created["bitarray"] == "1" and created["nullPKpasswds"] == "false"
    assert created["message"] == "Keystore alias 'ServerKeys' saved successfully."
    assert created["keyAliases"] == ["server"] and created["uploadFileName"] == "server.jks"
    assert "fileContent" not in created
    listed = (await node.admin.get("/is/keystore")).json()["keystores"]
    assert [k["keyStoreName"] for k in listed] == ["ServerKeys"]
    one = (await node.admin.get("/is/keystore/ServerKeys")).json()["keystores"]
    assert one == listed
    missing = await node.admin.get("/is/keystore/NoSuch")
    assert missing.status_code == 404 and "NoSuch" in missing.json()["errorDetails"]


async def test_upload_json_with_base64_and_pkcs12(node: Node, fx: Fixtures) -> None:
    r = await node.admin.post("/is/keystore", json={
        "keyStoreName": "FromJson", "keyStoreType": "PKCS12", "uploadFileName": "server.p12",
        "keyStorePassword": base64.b64encode(P12_PASS.encode()).decode(), "isPwdBase64Encoded": "true",
        "fileContent": base64.b64encode(fx.read("server.p12")).decode()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["isLoaded"] is True and body["keyStoreProvider"] == "SunJSSE"
    # no key password given: PKCS12 keys open with the store password
    assert body["pkAliasesList"] == "server" and body["bitarray"] == "1" and body["nullPKpasswds"] == "true"


async def test_several_key_aliases_and_missing_passwords(node: Node, fx: Fixtures) -> None:
    r = await upload(node, "keystore", "Two", fx.read("two.jks"), keyStorePassword=TWO_STORE_PASS,
                     pkAliasesList="first,second", pkPasswordsList=f"{TWO_KEY_PASSES['first']}, ",
                     nullPKpasswds="false,true")
    body = r.json()
    assert r.status_code == 200 and body["isLoaded"] is True and body["isWarning"] is True
    assert body["bitarray"] == "1,0" and "second" in body["message"]
    none = await upload(node, "keystore", "TwoBare", fx.read("two.jks"), keyStorePassword=TWO_STORE_PASS)
    assert none.json()["isLoaded"] is True and none.json()["bitarray"] == "0,0"
    assert "at least one" in none.json()["message"]


async def test_wrong_passwords_save_the_store_not_loaded(node: Node, fx: Fixtures) -> None:
    r = await upload(node, "keystore", "BadStorePw", fx.read("server.jks"), keyStorePassword="wrong-one",
                     pkAliasesList="server", pkPasswordsList=JKS_KEY_PASS)
    assert r.status_code == 200, r.text
    assert r.json()["isLoaded"] is False and "password is incorrect" in r.json()["message"]
    r = await upload(node, "keystore", "BadKeyPw", fx.read("server.jks"), keyStorePassword=JKS_STORE_PASS,
                     pkAliasesList="server", pkPasswordsList="wrong-key-pw")
    assert r.json()["isLoaded"] is False and "'server'" in r.json()["message"] and r.json()["bitarray"] == "0"
    r = await upload(node, "keystore", "BadP12Pw", fx.read("server.p12"), keyStoreType="PKCS12",
                     keyStorePassword="wrong-one")
    assert r.status_code == 200 and r.json()["isLoaded"] is False
    r = await upload(node, "truststore", "BadTrustPw", fx.read("trust.jks"), keyStorePassword="wrong-one")
    assert r.json()["isLoaded"] is False and r.json()["certificateAliases"] == ["testca"]
    listed = {k["keyStoreName"]: k["isLoaded"] for k in (await node.admin.get("/is/keystore")).json()["keystores"]}
    assert listed == {"BadStorePw": False, "BadKeyPw": False, "BadP12Pw": False}
    # a store that is not loaded cannot serve TLS
    with pytest.raises(KeystoreUnavailable, match="not loaded"):
        await server_context_for(node.portico.store, node.portico.secrets, "BadKeyPw", "server")


@pytest.mark.parametrize("name", ["bad-name", "has space", "dots.not.allowed", "ünïcode", "x" * 101, "semi;colon"])
async def test_bad_store_names(node: Node, fx: Fixtures, name: str) -> None:
    r = await upload(node, "keystore", name, fx.read("server.jks"), keyStorePassword=JKS_STORE_PASS)
    assert r.status_code == 400 and "letters, digits and underscores" in r.json()["errorDetails"]
    r = await upload(node, "truststore", name, fx.read("bundle.pem"), keyStoreType="PEM")
    assert r.status_code == 400
    assert (await node.admin.get("/is/keystore")).json()["keystores"] == []
    assert (await node.admin.get("/is/truststore")).json()["truststores"] == []


async def test_malformed_uploads_store_nothing(node: Node, fx: Fixtures) -> None:
    jks_file = fx.read("server.jks")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"file": b"definitely not a keystore", "keyStorePassword": "x"}, 400, "not a JKS keystore"),
        ({"file": jks_file[: len(jks_file) // 2], "keyStorePassword": JKS_STORE_PASS}, 400, "truncated"),
        ({"file": fx.read("server.p12"), "keyStorePassword": P12_PASS}, 400, "PKCS12"),
        ({"file": os.urandom(2 * 1024 * 1024 + 1), "keyStorePassword": "x"}, 413, "larger than"),
        ({"file": b"", "keyStorePassword": "x"}, 400, "empty"),
        ({"file": jks_file}, 400, "keyStorePassword"),
        ({"file": jks_file, "keyStorePassword": JKS_STORE_PASS, "keyStoreType": "JCEKS"}, 400, "keyStoreType"),
        ({"file": jks_file, "keyStorePassword": JKS_STORE_PASS, "pkAliasesList": "nosuch"}, 400, "nosuch"),
        ({"file": jks_file, "keyStorePassword": JKS_STORE_PASS, "pkAliasesList": "server",
          "pkPasswordsList": "a,b"}, 400, "pkPasswordsList"),
        ({"file": jks_file, "keyStorePassword": JKS_STORE_PASS, "nullPKpasswds": "maybe",
          "pkAliasesList": "server"}, 400, "nullPKpasswds"),
        ({"file": jks_file, "keyStorePassword": "%%%", "isPwdBase64Encoded": "true"}, 400, "base64"),
        ({"file": jks_file, "keyStorePassword": JKS_STORE_PASS, "surprise": "x"}, 400, "surprise"),
    ]
    for fields, status, fragment in cases:
        file = fields.pop("file")
        r = await upload(node, "keystore", "Broken", file, **fields)
        assert r.status_code == status, (fields, r.text)
        assert fragment in r.json()["errorDetails"], (fields, r.text)
    no_file = await node.admin.post("/is/keystore", data={"keyStoreName": "Broken", "keyStorePassword": "x"},
                                    files={"other": ("x", b"y")})
    assert no_file.status_code == 400
    for raw, fragment in ((b"", "empty"), (b"[1]", "JSON object"), (b"{bad", "malformed"),
                          (b'{"keyStoreName": "A", "fileContent": "***"}', "base64"),
                          (b'{"keyStoreName": "A", "keyStorePassword": 5}', "string")):
        r = await node.admin.post("/is/keystore", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400 and fragment in r.json()["errorDetails"], r.text
    garbled = await node.admin.post("/is/keystore", content=b"--x\r\nnot really multipart",
                                    headers={"content-type": "multipart/form-data; boundary=x"})
    assert garbled.status_code == 400
    assert (await node.admin.get("/is/keystore")).json()["keystores"] == []


async def test_duplicate_name_is_a_conflict(node: Node, fx: Fixtures) -> None:
    await pem_trust(node, fx)
    r = await upload(node, "truststore", "TestCAs", fx.read("bundle.pem"), keyStoreType="PEM")
    assert r.status_code == 409 and "already exists" in r.json()["errorDetails"]


async def test_truststores(node: Node, fx: Fixtures) -> None:
    jks_trust = await upload(node, "truststore", "JksTrust", fx.read("trust.jks"), keyStorePassword=TRUST_PASS,
                             keyStoreDescription="our CA")
    body = jks_trust.json()
    assert jks_trust.status_code == 200 and body["isLoaded"] is True
    assert body["certificateAliases"] == ["testca"] == body["certficateAliases"]
    assert body["id"] == "JksTrust" and body["keyStoreDescription"] == "our CA"
    pem = await pem_trust(node, fx)
    assert pem["certificateAliases"] == ["portico_test_ca", "some_other_ca"] and pem["keyStoreProvider"]
    listed = (await node.admin.get("/is/truststore")).json()["truststores"]
    assert [t["keyStoreName"] for t in listed] == ["JksTrust", "TestCAs"]
    key_as_trust = await upload(node, "truststore", "Nope", fx.read("bundle.pem"), keyStoreType="PEMX")
    assert key_as_trust.status_code == 400


async def test_update_keeps_what_is_not_sent(node: Node, fx: Fixtures) -> None:
    created = await server_jks(node, fx)
    r = await node.admin.post("/is/keystore/ServerKeys", data={"keyStoreDescription": "renamed description"})
    assert r.status_code == 200, r.text
    assert r.json()["isLoaded"] is True and r.json()["keyStoreDescription"] == "renamed description"
    assert r.json()["pkAliasesList"] == "server" and r.json()["bitarray"] == "1"
    # the GET document posted back as JSON (handles instead of passwords) keeps everything
    document = (await node.admin.get("/is/keystore/ServerKeys")).json()["keystores"][0]
    r = await node.admin.post("/is/keystore/ServerKeys", json={**document, "keyStoreDescription": "again"})
    assert r.status_code == 200, r.text
    assert r.json()["isLoaded"] is True and r.json()["bitarray"] == "1"
    # a new file with a wrong key password: saved, not loaded
    r = await upload(node, "keystore", "", fx.read("two.jks"), path="/is/keystore/ServerKeys",
                     keyStorePassword=TWO_STORE_PASS, pkAliasesList="first", pkPasswordsList="wrong")
    assert r.status_code == 200 and r.json()["isLoaded"] is False
    assert r.json()["keyAliases"] == ["second", "first"]
    # and back to good passwords
    r = await node.admin.post("/is/keystore/ServerKeys", data={
        "pkAliasesList": "first,second", "pkPasswordsList": ",".join(TWO_KEY_PASSES.values())})
    assert r.json()["isLoaded"] is True and r.json()["bitarray"] == "1,1", r.text
    assert created["keyStoreName"] == r.json()["keyStoreName"]
    renamed = await node.admin.post("/is/keystore/ServerKeys", data={"keyStoreName": "Other"})
    assert renamed.status_code == 400 and "renamed" in renamed.json()["errorDetails"]
    missing = await node.admin.post("/is/keystore/NoSuch", data={"keyStoreDescription": "x"})
    assert missing.status_code == 404
    handle_without_password = await node.admin.post("/is/keystore/ServerKeys", data={
        "pkAliasesList": "first", "pkPasswordsList": "wm.security.keystore.ServerKeys.first"})
    assert handle_without_password.status_code == 200  # 'first' has a stored password: kept
    assert handle_without_password.json()["bitarray"] == "1"


async def test_keystore_defaults(node: Node, fx: Fixtures) -> None:
    empty = (await node.admin.get("/configurations/keystore")).json()
    assert empty == {"configId": "keystore", "keystoreName": None, "signingAlias": None, "truststoreName": None,
                     "outboundKeystoreName": None, "outboundKeyAlias": None, "outboundTruststoreName": None}
    await server_jks(node, fx)
    await pem_trust(node, fx)
    r = await node.admin.put("/configurations/keystore", json={
        "keystoreName": "ServerKeys", "signingAlias": "server", "truststoreName": "TestCAs",
        "outboundTruststoreName": "TestCAs"})
    assert r.status_code == 200, r.text
    assert r.json()["keystoreName"] == "ServerKeys" and r.json()["outboundKeystoreName"] is None
    bad: list[tuple[dict[str, Any], str]] = [
        ({"keystoreName": "NoSuch"}, "NoSuch"),
        ({"signingAlias": "nosuchkey"}, "nosuchkey"),
        ({"outboundKeyAlias": "server"}, "outboundKeystoreName"),
        ({"outboundTruststoreName": "NoTrust"}, "NoTrust"),
        ({"keystoreName": 5}, "keystoreName"),
        ({"sslPort": "443"}, "sslPort"),
        ({"truststoreName": "ServerKeys"}, "ServerKeys"),  # a keystore is not a truststore
    ]
    for body, fragment in bad:
        r = await node.admin.put("/configurations/keystore", json=body)
        assert r.status_code == 400 and fragment in r.json()["errorDetails"], (body, r.text)
    assert (await node.admin.get("/configurations/keystore")).json()["signingAlias"] == "server"
    cleared = await node.admin.put("/configurations/keystore",
                                   json={"truststoreName": None, "outboundTruststoreName": ""})
    assert cleared.json()["truststoreName"] is None and cleared.json()["keystoreName"] == "ServerKeys"


async def test_defaults_must_be_usable(node: Node, fx: Fixtures) -> None:
    """A default store that is not loaded, a key alias without a working password or a truststore
    without certificates would break every connection that uses it: 400 naming the field."""
    await upload(node, "keystore", "BadKeyPw", fx.read("server.jks"), keyStorePassword=JKS_STORE_PASS,
                 pkAliasesList="server", pkPasswordsList="wrong-key-pw")
    await upload(node, "keystore", "Two", fx.read("two.jks"), keyStorePassword=TWO_STORE_PASS,
                 pkAliasesList="first", pkPasswordsList=TWO_KEY_PASSES["first"])
    await upload(node, "truststore", "BadTrustPw", fx.read("trust.jks"), keyStorePassword="wrong-one")
    r = await upload(node, "truststore", "NoCerts", fx.read("server.jks"), keyStorePassword=JKS_STORE_PASS)
    assert r.status_code == 200 and r.json()["certificateAliases"] == [], r.text
    bad: list[tuple[dict[str, Any], str, str]] = [
        ({"outboundKeystoreName": "BadKeyPw", "outboundKeyAlias": "server"}, "outboundKeystoreName", "not loaded"),
        ({"keystoreName": "Two", "signingAlias": "second"}, "signingAlias", "no working password"),
        ({"outboundTruststoreName": "BadTrustPw"}, "outboundTruststoreName", "not loaded"),
        ({"truststoreName": "NoCerts"}, "truststoreName", "no trusted certificates"),
    ]
    for body, field, reason in bad:
        r = await node.admin.put("/configurations/keystore", json=body)
        assert r.status_code == 400, (body, r.text)
        assert field in r.json()["errorDetails"] and reason in r.json()["errorDetails"], (body, r.text)
    r = await node.admin.put("/configurations/keystore", json={"keystoreName": "Two", "signingAlias": "first"})
    assert r.status_code == 200, r.text


async def test_truststore_in_use_keeps_certificates(node: Node, fx: Fixtures) -> None:
    """A truststore in use replaced by a file with no trusted certificates (a keystore, say) would
    still load, but nothing could be verified against it: refused naming the user."""
    await pem_trust(node, fx)
    r = await node.admin.put("/configurations/keystore", json={"outboundTruststoreName": "TestCAs"})
    assert r.status_code == 200, r.text
    r = await upload(node, "truststore", "", fx.read("server.jks"), path="/is/truststore/TestCAs",
                     keyStoreType="JKS", keyStorePassword=JKS_STORE_PASS)
    assert r.status_code == 400, r.text
    assert "outbound connections" in r.json()["errorDetails"] and "no trusted certificates" in r.json()["errorDetails"]
    stored = (await node.admin.get("/is/truststore/TestCAs")).json()["truststores"][0]
    assert stored["keyStoreType"] == "PEM" and stored["certificateAliases"]


async def test_delete_refused_while_in_use(node: Node, fx: Fixtures) -> None:
    await server_jks(node, fx)
    await pem_trust(node, fx)
    r = await node.admin.put("/configurations/keystore", json={
        "outboundKeystoreName": "ServerKeys", "outboundKeyAlias": "server", "truststoreName": "TestCAs"})
    assert r.status_code == 200, r.text
    r = await node.admin.delete("/is/keystore/ServerKeys")
    assert r.status_code == 400 and "outbound connections" in r.json()["errorDetails"]
    r = await node.admin.delete("/is/truststore/TestCAs")
    assert r.status_code == 400 and "inbound connections" in r.json()["errorDetails"]
    # replacing the file must keep the key alias in use
    r = await upload(node, "keystore", "", fx.read("two.jks"), path="/is/keystore/ServerKeys",
                     keyStorePassword=TWO_STORE_PASS)
    assert r.status_code == 400 and "'server'" in r.json()["errorDetails"]
    assert (await node.admin.get("/is/keystore/ServerKeys")).json()["keystores"][0]["keyAliases"] == ["server"]
    await node.admin.put("/configurations/keystore", json={"outboundKeystoreName": None, "outboundKeyAlias": None,
                                                            "truststoreName": None})
    alias = await node.admin.post("/alias", json={
        "name": "secureBackend", "type": "endpoint", "endPointURI": "https://127.0.0.1:1/",
        "keystoreAlias": "ServerKeys", "keyAlias": "server", "truststoreAlias": "TestCAs"})
    assert alias.status_code in (200, 201), alias.text
    r = await node.admin.delete("/is/keystore/ServerKeys")
    assert r.status_code == 400 and "endpoint alias 'secureBackend'" in r.json()["errorDetails"]
    r = await node.admin.delete("/is/truststore/TestCAs")
    assert r.status_code == 400 and "secureBackend" in r.json()["errorDetails"]
    await node.admin.delete(f"/alias/{alias.json()['alias']['id']}")
    assert (await node.admin.delete("/is/keystore/ServerKeys")).status_code == 200
    assert (await node.admin.delete("/is/truststore/TestCAs")).status_code == 200
    assert (await node.admin.get("/is/keystore/ServerKeys")).status_code == 404
    assert (await node.admin.delete("/is/keystore/ServerKeys")).status_code == 404


async def test_secrets_never_returned(node: Node, fx: Fixtures) -> None:
    texts = [(await server_jks(node, fx)).__repr__()]
    for name, file, password in (("P12", "server.p12", P12_PASS), ("Two", "two.jks", TWO_STORE_PASS)):
        r = await upload(node, "keystore", name, fx.read(file), keyStoreType="PKCS12" if name == "P12" else "JKS",
                         keyStorePassword=password, pkAliasesList="server" if name == "P12" else "first,second",
                         pkPasswordsList=P12_PASS if name == "P12" else ",".join(TWO_KEY_PASSES.values()))
        texts.append(r.text)
    texts.append((await upload(node, "truststore", "Trust", fx.read("trust.jks"), keyStorePassword=TRUST_PASS)).text)
    for path in ("/is/keystore", "/is/keystore/ServerKeys", "/is/keystore/P12", "/is/keystore/Two",
                 "/is/truststore", "/is/truststore/Trust", "/configurations/keystore"):
        r = await node.admin.get(path)
        assert r.status_code == 200
        texts.append(r.text)
    for text in texts:
        assert_no_secrets(text, fx)
    document = (await node.admin.get("/is/keystore/Two")).json()["keystores"][0]
    assert document["keyStorePassword"] == "wm.security.keystore.Two"
    assert document["pkPasswordsList"] == "wm.security.keystore.Two.first,wm.security.keystore.Two.second"


def _database_bytes(root: Path) -> bytes:
    files = [p for p in root.rglob("*") if p.is_file() and ".db" in p.name]
    assert files, list(root.rglob("*"))
    return b"".join(p.read_bytes() for p in files)


async def test_secrets_sealed_in_the_database_file(sqlite_node: Node, fx: Fixtures, tmp_path: Path) -> None:
    await server_jks(sqlite_node, fx)
    await upload(sqlite_node, "truststore", "Trust", fx.read("trust.jks"), keyStorePassword=TRUST_PASS)
    raw = _database_bytes(tmp_path)
    assert b"ServerKeys" in raw  # the store is there ...
    for secret in SECRETS:  # ... its passwords are not, in any encoding
        assert secret.encode() not in raw and secret.encode("utf-16-be") not in raw
        assert base64.b64encode(secret.encode()) not in raw
    server = fx.read("server.jks")
    for chunk in (server[100:140], base64.b64encode(server)[100:140]):
        assert chunk not in raw
    key_file = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


async def test_tls_contexts_from_stored_stores(node: Node, fx: Fixtures) -> None:
    await server_jks(node, fx)
    await pem_trust(node, fx)
    r = await upload(node, "keystore", "ClientKeys", fx.read("client.p12"), keyStoreType="PKCS12",
                     keyStorePassword=P12_PASS)
    assert r.json()["isLoaded"] is True, r.text
    r = await upload(node, "truststore", "JksTrust", fx.read("trust.jks"), keyStorePassword=TRUST_PASS)
    r = await upload(node, "keystore", "TwoBare", fx.read("two.jks"), keyStorePassword=TWO_STORE_PASS)
    assert r.json()["bitarray"] == "0,0"
    store, box = node.portico.store, node.portico.secrets
    server = await server_context_for(store, box, "ServerKeys", "server")
    line, _ = await talk(server, await client_context_for(store, box, truststore="JksTrust"))
    assert line == b"hello over tls\n"
    mutual = await server_context_for(store, box, "ServerKeys", "server", truststore="TestCAs",
                                      client_auth="required")
    client = await client_context_for(store, box, truststore="TestCAs", keystore="ClientKeys", key_alias="client")
    line, peer = await talk(mutual, client)
    assert line == b"hello over tls\n" and peer is not None
    for call, fragment in (
        (server_context_for(store, box, "NoSuch", "server"), "does not exist"),
        (server_context_for(store, box, "ServerKeys", "nokey"), "no private key 'nokey'"),
        (client_context_for(store, box, truststore="NoTrust"), "does not exist"),
        (server_context_for(store, box, "TwoBare", "first"), "no working password"),
    ):
        with pytest.raises(KeystoreUnavailable, match=fragment):
            await call


async def test_view_privilege_reads_but_does_not_write(sqlite_node: Node, fx: Fixtures) -> None:
    from portico.security import privileges as priv
    from portico.security.passwords import hash_password
    from portico.security.principal import TEAM, USER

    async with sqlite_node.portico.store.transaction() as tx:
        await tx.insert(USER, "viewer", {"id": "viewer", "loginId": "viewer", "active": True,
                                         "passwordHash": hash_password("Viewer-pass-1")}, name="viewer")
        await tx.insert(TEAM, "viewers", {"id": "viewers", "name": "viewers", "groupIds": [], "userIds": ["viewer"],
                                          "privilege": priv.to_bits([priv.VIEW_ADMIN_CONFIG])}, name="viewers")
    async with httpx.AsyncClient(base_url=f"{sqlite_node.base}/rest/apigateway", auth=("viewer", "Viewer-pass-1"),
                                 timeout=30) as viewer:
        assert (await viewer.get("/is/keystore")).status_code == 200
        assert (await viewer.get("/configurations/keystore")).status_code == 200
        r = await viewer.post("/is/truststore", data={"keyStoreName": "X", "keyStoreType": "PEM"},
                              files={"fileContent": ("a.pem", fx.read("ca.pem"))})
        assert r.status_code == 403 and "Manage security configurations" in r.json()["errorDetails"]


async def test_random_uploads_never_500(sqlite_node: Node, fx: Fixtures) -> None:
    """Seeded random field combinations, as JSON and as multipart: a 2xx or a 4xx naming the problem."""
    import random

    rng = random.Random(int(os.environ.get("PORTICO_FUZZ_SEED", "5")))
    files = [fx.read(n) for n in ("server.jks", "server.p12", "two.jks", "bundle.pem", "trust.jks")]
    fields = ["keyStoreName", "keyStoreDescription", "keyStoreType", "keyStoreProvider", "keyStorePassword",
              "uploadFileName", "pkAliasesList", "pkPasswordsList", "nullPKpasswds", "isPwdBase64Encoded"]
    values: list[Any] = ["", "x", "JKS", "PKCS12", "PEM", "true", "false", "server", "first,second", " , ", "\x00",
                         "é" * 3, "a" * 3000, "S1", "wm.security.keystore.S1", "wm.security.keystore.S1.server",
                         None, 5, [1, None, True], {"a": 1}]
    for _ in range(120):
        body = {f: rng.choice(values) for f in rng.sample(fields, rng.randrange(len(fields)))}
        file = rng.choice([*files, os.urandom(64), b""])
        if rng.random() < 0.3:
            file = file[: rng.randrange(len(file) + 1)]
        path = rng.choice(["/is/keystore", "/is/truststore", "/is/keystore/S1", "/is/truststore/S1"])
        if rng.random() < 0.5:
            r = await sqlite_node.admin.post(path, json={**body, "fileContent": base64.b64encode(file).decode()})
        else:
            data = {k: str(v) for k, v in body.items()}
            r = await sqlite_node.admin.post(path, data=data, files={"fileContent": ("f", file)})
        assert r.status_code < 500, (path, body, r.text)
        if r.status_code >= 400:
            assert r.json()["errorDetails"], r.text
