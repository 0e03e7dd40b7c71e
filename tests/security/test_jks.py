"""Our JKS reader and writer against files made by keytool, and keytool reading files we wrote."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from portico.security.keystore import jks
from portico.security.keystore.errors import KeystoreFormatError, WrongPasswordError
from tests.support.keystores import (
    JKS_KEY_PASS,
    JKS_STORE_PASS,
    P12_PASS,
    TRUST_PASS,
    TWO_KEY_PASSES,
    TWO_STORE_PASS,
    Fixtures,
    keystore_fixtures,
    keytool,
    keytool_aliases,
)


@pytest.fixture(scope="module")
def fx() -> Fixtures:
    return keystore_fixtures()


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_reads_keytool_key_entry_with_its_chain(fx: Fixtures) -> None:
    parsed = jks.read(fx.read("server.jks"), JKS_STORE_PASS)
    assert parsed.verified
    [entry] = parsed.private_keys
    assert entry.alias == "server"
    chain = [x509.load_der_x509_certificate(c) for c in entry.chain]
    assert chain[0] == fx.server_cert and chain[1] == fx.ca
    key = serialization.load_der_private_key(entry.decrypt(JKS_KEY_PASS), None)
    assert key.public_key().public_numbers() == fx.server_cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_reads_several_keys_each_with_its_own_password(fx: Fixtures) -> None:
    parsed = jks.read(fx.read("two.jks"), TWO_STORE_PASS)
    by_alias = {e.alias: e for e in parsed.private_keys}
    assert set(by_alias) == set(TWO_KEY_PASSES)
    for alias, password in TWO_KEY_PASSES.items():
        serialization.load_der_private_key(by_alias[alias].decrypt(password), None)
    other = "second" if alias == "first" else "first"
    with pytest.raises(WrongPasswordError):
        by_alias[other].decrypt(password)


def test_reads_trusted_certificate_entries(fx: Fixtures) -> None:
    parsed = jks.read(fx.read("trust.jks"), TRUST_PASS)
    assert [(e.alias, x509.load_der_x509_certificate(e.certificate)) for e in parsed.certificates] == [
        ("testca", fx.ca)]
    assert parsed.private_keys == []


def test_wrong_store_password_is_refused_but_aliases_readable_without_one(fx: Fixtures) -> None:
    data = fx.read("two.jks")
    with pytest.raises(WrongPasswordError, match="password is incorrect"):
        jks.read(data, "not-the-password")
    unverified = jks.read(data, None)
    assert not unverified.verified
    assert sorted(e.alias for e in unverified.private_keys) == ["first", "second"]


def test_wrong_key_password(fx: Fixtures) -> None:
    [entry] = jks.read(fx.read("server.jks"), JKS_STORE_PASS).private_keys
    with pytest.raises(WrongPasswordError, match="key password"):
        entry.decrypt(JKS_STORE_PASS)


def test_written_store_is_read_by_keytool(fx: Fixtures, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    [source] = jks.read(fx.read("server.jks"), JKS_STORE_PASS).private_keys
    protected = jks.protect_key(_pkcs8(key), "our-key-pass")
    cert_der = fx.ca.public_bytes(serialization.Encoding.DER)
    entries: list[jks.Entry] = [
        jks.PrivateKeyEntry("ourkey", 1_700_000_000_000, jks.protect_key(source.decrypt(JKS_KEY_PASS), "our-key-pass"),
                            source.chain),
        jks.PrivateKeyEntry("eckey", 1_700_000_000_000, protected, source.chain[1:]),
        jks.TrustedCertEntry("ourca", 1_700_000_000_000, cert_der),
    ]
    path = tmp_path / "ours.jks"
    path.write_bytes(jks.write(entries, "our-store-pass"))
    assert keytool_aliases(path, "our-store-pass") == ["eckey", "ourca", "ourkey"]
    # keytool takes the key out with our key password: it undid our key protector
    p12 = tmp_path / "out.p12"
    keytool("-importkeystore", "-noprompt", "-srckeystore", str(path), "-srcstoretype", "JKS",
            "-srcstorepass", "our-store-pass", "-srcalias", "ourkey", "-srckeypass", "our-key-pass",
            "-destkeystore", str(p12), "-deststoretype", "PKCS12", "-deststorepass", P12_PASS)
    exported = pkcs12.load_pkcs12(p12.read_bytes(), P12_PASS.encode())
    assert exported.cert is not None and exported.cert.certificate == fx.server_cert
    # and keytool refuses our file with a wrong password (the integrity digest is checked)
    with pytest.raises(RuntimeError):
        keytool_aliases(path, "wrong-store-pass")


def test_write_read_round_trip_keeps_everything(fx: Fixtures) -> None:
    original = jks.read(fx.read("two.jks"), TWO_STORE_PASS)
    again = jks.read(jks.write(original.entries, "changed-pass"), "changed-pass")
    assert again.entries == original.entries


def test_aliases_in_modified_utf8_round_trip() -> None:
    cert = keystore_fixtures().ca.public_bytes(serialization.Encoding.DER)
    names = ["plain", "clé-é", "nul\x00inside", "emoji😀", "日本"]
    data = jks.write([jks.TrustedCertEntry(n, 0, cert) for n in names], "pw")
    assert [e.alias for e in jks.read(data, "pw").entries] == names
    assert b"\xc0\x80" in data and b"\xed\xa0\xbd" in data  # NUL and a surrogate as Java writes them


def test_key_protector_check_and_format() -> None:
    plain = _pkcs8(ec.generate_private_key(ec.SECP256R1()))
    protected = jks.protect_key(plain, "pw", salt=b"\x01" * 20)
    assert protected == jks.protect_key(plain, "pw", salt=b"\x01" * 20)
    # AlgorithmIdentifier: the Sun JKS key protector OID with NULL parameters
    assert bytes.fromhex("300e060a2b060104012a021101010500") in protected
    assert jks.recover_key(protected, "pw") == plain
    with pytest.raises(WrongPasswordError):
        jks.recover_key(protected, "pW")
    with pytest.raises(KeystoreFormatError):
        jks.recover_key(protected[:-1], "pw")


def test_version_1_files_are_read() -> None:
    cert = keystore_fixtures().ca.public_bytes(serialization.Encoding.DER)
    body = struct.pack(">III", jks.MAGIC, 1, 1) + struct.pack(">I", 2) + struct.pack(">H", 2) + b"v1"
    body += struct.pack(">q", 5) + struct.pack(">I", len(cert)) + cert
    data = body + jks._integrity("pw", body)
    [entry] = jks.read(data, "pw").entries
    assert entry == jks.TrustedCertEntry("v1", 5, cert)


def test_tampered_file_fails_the_integrity_check(fx: Fixtures) -> None:
    data = bytearray(fx.read("trust.jks"))
    data[len(data) // 2] ^= 0x01
    with pytest.raises((WrongPasswordError, KeystoreFormatError)):
        jks.read(bytes(data), TRUST_PASS)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "not a JKS"),
        (b"this is not a keystore at all, just some text", "not a JKS"),
        (struct.pack(">I", jks.JCEKS_MAGIC) + b"\x00" * 40, "JCEKS"),
        (struct.pack(">III", jks.MAGIC, 3, 0) + b"\x00" * 20, "version 3"),
        (struct.pack(">III", jks.MAGIC, 2, 0xFFFFFFFF) + b"\x00" * 20, "entries"),
        (struct.pack(">III", jks.MAGIC, 2, 1) + struct.pack(">IH", 7, 1) + b"x" + b"\x00" * 8 + b"\x00" * 20,
         "unknown tag 7"),
    ],
)
def test_malformed_files(data: bytes, fragment: str) -> None:
    with pytest.raises(KeystoreFormatError, match=fragment):
        jks.read(data, "pw")


def test_every_truncation_is_a_format_error(fx: Fixtures) -> None:
    data = fx.read("server.jks")
    for cut in [*range(0, len(data), 7), len(data) - 1]:
        for password in (JKS_STORE_PASS, None):
            with pytest.raises(KeystoreFormatError):
                jks.read(data[:cut], password)


def test_trailing_bytes_after_the_last_entry(fx: Fixtures) -> None:
    data = fx.read("trust.jks")
    body = data[:-20] + b"junk"
    with pytest.raises(KeystoreFormatError, match="after its last entry"):
        jks.read(body + jks._integrity(TRUST_PASS, body), TRUST_PASS)
