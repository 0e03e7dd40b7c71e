"""Keystore fixtures made at test time: a CA, a server and a client certificate (``cryptography``),
and JKS / PKCS12 / PEM files of them made with ``keytool`` (OpenJDK) and ``cryptography``.

Built once per test process (keytool takes about a second per call)."""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import ipaddress
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

P12_PASS = "p12-store-pass"
JKS_STORE_PASS = "jks-store-pass"
JKS_KEY_PASS = "jks-key-pass"
TRUST_PASS = "trust-pass"
TWO_STORE_PASS = "two-store-pass"
TWO_KEY_PASSES = {"first": "first-key-pass", "second": "second-key-pass"}


def keytool(*args: str) -> str:
    result = subprocess.run(["keytool", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"keytool {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


def keytool_aliases(path: Path, password: str, store_type: str = "JKS") -> list[str]:
    """The aliases ``keytool -list`` reads from ``path`` (it verifies the integrity digest)."""
    out = keytool("-list", "-keystore", str(path), "-storepass", password, "-storetype", store_type)
    return sorted(line.split(",")[0] for line in out.splitlines() if "Entry," in line or "entry," in line)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, ca: bool,
          usage: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Fixtures:
    root: Path
    ca: x509.Certificate
    other_ca: x509.Certificate
    server_cert: x509.Certificate

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def path(self, name: str) -> Path:
        return self.root / name


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@functools.cache
def keystore_fixtures() -> Fixtures:
    root = Path(tempfile.mkdtemp(prefix="portico-keystores-"))
    atexit.register(shutil.rmtree, root, True)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("Portico Test CA", ca_key, "Portico Test CA", ca_key, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _cert("Some Other CA", other_key, "Some Other CA", other_key, ca=True)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = _cert("localhost", server_key, "Portico Test CA", ca_key, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("test client", client_key, "Portico Test CA", ca_key, ca=False,
                   usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    (root / "ca.pem").write_bytes(_pem(ca))
    (root / "bundle.pem").write_bytes(_pem(ca) + _pem(other_ca))
    (root / "server.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"server", server_key, server, [ca], serialization.BestAvailableEncryption(P12_PASS.encode())))
    (root / "client.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"client", client_key, client, [ca], serialization.BestAvailableEncryption(P12_PASS.encode())))
    # keytool: PKCS12 -> JKS with a key password of its own
    for name in ("server", "client"):
        keytool("-importkeystore", "-noprompt", "-srckeystore", str(root / f"{name}.p12"), "-srcstoretype", "PKCS12",
                "-srcstorepass", P12_PASS, "-srcalias", name, "-destkeystore", str(root / f"{name}.jks"),
                "-deststoretype", "JKS", "-deststorepass", JKS_STORE_PASS, "-destkeypass", JKS_KEY_PASS,
                "-destalias", name)
    # keytool: a JKS with two key pairs under different key passwords, and a truststore
    for alias, key_pass in TWO_KEY_PASSES.items():
        keytool("-genkeypair", "-noprompt", "-keystore", str(root / "two.jks"), "-storetype", "JKS",
                "-storepass", TWO_STORE_PASS, "-keypass", key_pass, "-alias", alias, "-keyalg", "EC",
                "-groupname", "secp256r1", "-dname", f"CN={alias}", "-validity", "30")
    keytool("-importcert", "-noprompt", "-keystore", str(root / "trust.jks"), "-storetype", "JKS",
            "-storepass", TRUST_PASS, "-alias", "testca", "-file", str(root / "ca.pem"))
    keytool("-genkeypair", "-noprompt", "-keystore", str(root / "keytool.p12"), "-storetype", "PKCS12",
            "-storepass", P12_PASS, "-alias", "signer", "-keyalg", "RSA", "-keysize", "2048",
            "-dname", "CN=signer", "-validity", "30")
    return Fixtures(root, ca, other_ca, server)
