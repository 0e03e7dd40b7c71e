"""Opening JKS / PKCS12 / PEM stores, the master key and sealed secrets, and TLS contexts built from
keys and certificates of keytool-made stores (real handshakes on loopback)."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import stat
from pathlib import Path

import pytest

from portico.security.keystore import client_context, open_store, server_context
from portico.security.keystore.errors import KeystoreFormatError, WrongPasswordError
from portico.security.keystore.formats import KeyPair
from portico.security.keystore.records import KeyAliasConfig, judge_keystore, judge_truststore
from portico.security.secrets import KEY_FILE, MasterKeyError, SecretBox, SecretError, load_secret_box
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


@pytest.fixture(scope="module")
def fx() -> Fixtures:
    return keystore_fixtures()


# --- opening stores ---------------------------------------------------------------------------


def test_pkcs12_from_cryptography_and_from_keytool(fx: Fixtures) -> None:
    made = open_store(fx.read("server.p12"), "PKCS12", P12_PASS)
    assert made.key_aliases == ["server"] and made.password_error is None
    pair = made.key("server", None)
    assert pair.chain == (fx.server_cert, fx.ca)
    by_keytool = open_store(fx.read("keytool.p12"), "PKCS12", P12_PASS)
    assert by_keytool.key_aliases == ["signer"]
    assert by_keytool.key("SIGNER", P12_PASS).alias == "signer"  # aliases are case-insensitive


def test_pkcs12_wrong_password_is_not_a_format_error(fx: Fixtures) -> None:
    opened = open_store(fx.read("server.p12"), "PKCS12", "wrong")
    assert opened.password_error and "password" in opened.password_error
    with pytest.raises(WrongPasswordError):
        opened.key("server", None)
    # a PKCS12 key is protected by the store password: another key password is wrong
    with pytest.raises(WrongPasswordError):
        open_store(fx.read("server.p12"), "PKCS12", P12_PASS).key("server", "something-else")


@pytest.mark.parametrize(
    ("name", "declared", "fragment"),
    [
        ("server.jks", "PKCS12", "this is a JKS file"),
        ("server.p12", "JKS", "looks like a PKCS12 file"),
        ("ca.pem", "JKS", "not a JKS keystore"),
        ("server.jks", "PEM", "not a PEM bundle"),
    ],
)
def test_wrong_declared_type(fx: Fixtures, name: str, declared: str, fragment: str) -> None:
    with pytest.raises(KeystoreFormatError, match=fragment):
        open_store(fx.read(name), declared, "x")


def test_truncated_and_garbage_pkcs12(fx: Fixtures) -> None:
    data = fx.read("server.p12")
    for cut in (0, 1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(KeystoreFormatError):
            open_store(data[:cut], "PKCS12", P12_PASS)
    with pytest.raises(KeystoreFormatError):
        open_store(os.urandom(600), "PKCS12", P12_PASS)


def test_pem_bundle(fx: Fixtures) -> None:
    opened = open_store(fx.read("bundle.pem"), "PEM", "")
    assert list(opened.trusted.values()) == [fx.ca, fx.other_ca]
    assert opened.certificate_aliases == ["portico_test_ca", "some_other_ca"]
    with pytest.raises(KeystoreFormatError, match="private keys"):
        open_store(fx.read("bundle.pem") + b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                   "PEM", "")
    with pytest.raises(KeystoreFormatError):
        open_store(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", "PEM", "")


def test_judging_key_passwords(fx: Fixtures) -> None:
    two = open_store(fx.read("two.jks"), "JKS", TWO_STORE_PASS)
    good = judge_keystore(two, [KeyAliasConfig(a, p) for a, p in TWO_KEY_PASSES.items()])
    assert good.loaded and not good.warning and good.bits == (1, 1)
    one_missing = judge_keystore(two, [KeyAliasConfig("first", TWO_KEY_PASSES["first"]),
                                       KeyAliasConfig("second", None)])
    assert one_missing.loaded and one_missing.warning and one_missing.bits == (1, 0)
    assert "second" in (one_missing.message or "")
    wrong = judge_keystore(two, [KeyAliasConfig("first", "nope"), KeyAliasConfig("second", TWO_KEY_PASSES["second"])])
    assert not wrong.loaded and wrong.bits == (0, 1) and "'first'" in (wrong.message or "")
    bad_store = judge_keystore(open_store(fx.read("two.jks"), "JKS", "wrong"), [KeyAliasConfig("first", None)])
    assert not bad_store.loaded and "keystore password" in (bad_store.message or "")
    # no key password given: the store password is tried (keytool's default when -keypass is omitted)
    p12 = open_store(fx.read("server.p12"), "PKCS12", P12_PASS)
    assert judge_keystore(p12, [KeyAliasConfig("server", None)]).bits == (1,)
    assert judge_truststore(open_store(fx.read("trust.jks"), "JKS", TRUST_PASS)).loaded
    assert not judge_truststore(open_store(fx.read("trust.jks"), "JKS", "wrong")).loaded


# --- master key and sealed secrets -------------------------------------------------------------


def test_secret_box_round_trip_and_binding() -> None:
    box = SecretBox(os.urandom(32))
    token = box.seal_text("s3cret", "keystore/a/password")
    assert "s3cret" not in token
    assert box.open_text(token, "keystore/a/password") == "s3cret"
    with pytest.raises(SecretError, match="does not decrypt"):
        box.open_text(token, "keystore/b/password")  # moved to another record
    with pytest.raises(SecretError, match="another master key"):
        SecretBox(os.urandom(32)).open_text(token, "keystore/a/password")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretError):
        box.open_text(tampered, "keystore/a/password")


def test_key_file_created_once_with_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTICO_MASTER_KEY", raising=False)
    first = load_secret_box(tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text())) == 32
    again = load_secret_box(tmp_path / "data")
    assert again.key_id == first.key_id
    assert again.open_text(first.seal_text("x", "c"), "c") == "x"
    path.write_text("garbage")
    with pytest.raises(MasterKeyError):
        load_secret_box(tmp_path / "data")


def test_master_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = os.urandom(32)
    monkeypatch.setenv("PORTICO_MASTER_KEY", base64.b64encode(raw).decode())
    box = load_secret_box(tmp_path)
    assert box.key_id == SecretBox(raw).key_id
    assert not (tmp_path / KEY_FILE).exists()
    monkeypatch.setenv("PORTICO_MASTER_KEY", "a long shared passphrase for every node")
    one, two = load_secret_box(tmp_path), load_secret_box(tmp_path / "elsewhere")
    assert one.key_id == two.key_id  # nodes with the same phrase share the key
    monkeypatch.setenv("PORTICO_MASTER_KEY", "short")
    with pytest.raises(MasterKeyError, match="at least 16"):
        load_secret_box(tmp_path)


# --- TLS ----------------------------------------------------------------------------------------


async def talk(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[bytes, dict[str, object] | None]:
    """One TLS connection on loopback: the line the server sends, and the client certificate it saw."""
    seen: dict[str, object] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["peer"] = writer.get_extra_info("peercert")
        writer.write(b"hello over tls\n")
        try:
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"), 10)
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
        finally:
            writer.close()
    finally:
        server.close()
    peer = seen.get("peer")
    return line, peer if isinstance(peer, dict) else None


def _server_key(fx: Fixtures) -> KeyPair:
    return open_store(fx.read("server.jks"), "JKS", JKS_STORE_PASS).key("server", JKS_KEY_PASS)


def _client_key(fx: Fixtures) -> KeyPair:
    return open_store(fx.read("client.p12"), "PKCS12", P12_PASS).key("client", None)


async def test_server_and_client_contexts_handshake(fx: Fixtures) -> None:
    trusted = open_store(fx.read("trust.jks"), "JKS", TRUST_PASS).trusted.values()
    line, peer = await talk(server_context(_server_key(fx)), client_context(list(trusted)))
    assert line == b"hello over tls\n" and not peer


async def test_untrusted_server_is_refused(fx: Fixtures) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await talk(server_context(_server_key(fx)), client_context([fx.other_ca]))


async def test_mutual_tls(fx: Fixtures) -> None:
    ca = open_store(fx.read("bundle.pem"), "PEM", "").trusted.values()
    server_ctx = server_context(_server_key(fx), list(ca), client_auth="required")
    line, peer = await talk(server_ctx, client_context([fx.ca], key=_client_key(fx)))
    assert line == b"hello over tls\n"
    assert peer is not None and ((("commonName", "test client"),),) == peer["subject"]
    # without a client certificate the server ends the connection
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        line, _ = await talk(server_ctx, client_context([fx.ca]))
        if not line:
            raise ConnectionError("closed without a reply")
    # optional: a client without a certificate is served
    line, peer = await talk(server_context(_server_key(fx), list(ca), client_auth="optional"), client_context([fx.ca]))
    assert line == b"hello over tls\n" and not peer


def test_contexts_need_trust_for_client_certificates(fx: Fixtures) -> None:
    with pytest.raises(ValueError, match="truststore"):
        server_context(_server_key(fx), None, client_auth="required")
    with pytest.raises(ValueError, match="no trusted certificates"):
        client_context([])


def test_key_never_left_in_temp_dir(fx: Fixtures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    server_context(_server_key(fx))
    assert list(tmp_path.iterdir()) == []
