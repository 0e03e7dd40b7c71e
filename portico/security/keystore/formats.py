"""One view over the keystore file types Portico accepts: JKS (our reader), PKCS12 (``cryptography``)
and PEM certificate bundles (truststores only).

:func:`open_store` reads a file with its store password. A malformed file raises
KeystoreFormatError; a wrong store password does not raise: the aliases that can be read without it
are listed and ``password_error`` says why the store cannot be used (the reference saves such a
store and marks it not loaded)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_private_key, pkcs12

from portico.security.keystore import _der, jks
from portico.security.keystore.errors import KeystoreError, KeystoreFormatError, WrongPasswordError

KEYSTORE_TYPES = ("JKS", "PKCS12")
TRUSTSTORE_TYPES = ("JKS", "PKCS12", "PEM")
PROVIDERS = {"JKS": "SUN", "PKCS12": "SunJSSE", "PEM": "Portico"}


@dataclass(frozen=True)
class KeyPair:
    """A usable private key and its certificate chain, leaf first."""

    alias: str
    private_key: PrivateKeyTypes
    chain: tuple[x509.Certificate, ...]


@dataclass
class OpenedStore:
    store_type: str
    key_aliases: list[str] = field(default_factory=list)
    trusted: dict[str, x509.Certificate] = field(default_factory=dict)
    password_error: str | None = None
    _jks: jks.JksFile | None = None
    _p12_key: KeyPair | None = None
    _store_password: str = ""

    @property
    def certificate_aliases(self) -> list[str]:
        return list(self.trusted)

    def find_alias(self, alias: str) -> str | None:
        """The key alias as stored, matching ``alias`` exactly or else ignoring case (JKS and PKCS12
        aliases are case-insensitive; keytool stores JKS aliases in lower case)."""
        if alias in self.key_aliases:
            return alias
        folded = [a for a in self.key_aliases if a.lower() == alias.lower()]
        return folded[0] if len(folded) == 1 else None

    def key(self, alias: str, password: str | None) -> KeyPair:
        """The key under ``alias``; WrongPasswordError when ``password`` (None: the store password)
        does not open it, KeyError when there is no such key."""
        if self.password_error:
            raise WrongPasswordError(self.password_error)
        stored = self.find_alias(alias)
        if stored is None:
            raise KeyError(alias)
        if self._jks is not None:
            entry = next(e for e in self._jks.private_keys if e.alias == stored)
            plain = entry.decrypt(self._store_password if password is None else password)
            try:
                private_key = load_der_private_key(plain, password=None)
            except (ValueError, TypeError) as exc:
                raise KeystoreFormatError(f"the private key of {stored!r} cannot be read: {exc}") from None
            return KeyPair(stored, private_key, tuple(_certificate(c, stored) for c in entry.chain))
        assert self._p12_key is not None
        if password not in (None, "", self._store_password):
            # PKCS12 files protect every entry with the store password (keytool ignores -keypass).
            raise WrongPasswordError(f"the key password of {stored!r} is incorrect (PKCS12 keys use the "
                                     "store password)")
        return self._p12_key


def _certificate(der: bytes, alias: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise KeystoreFormatError(f"the certificate of entry {alias!r} is malformed") from None


def open_store(data: bytes, store_type: str, password: str) -> OpenedStore:
    if not data:
        raise KeystoreFormatError("the uploaded file is empty")
    if store_type == "JKS":
        return _open_jks(data, password)
    if store_type == "PKCS12":
        return _open_pkcs12(data, password)
    if store_type == "PEM":
        return _open_pem(data)
    raise KeystoreFormatError(f"keystore type {store_type!r} is not supported")


def _open_jks(data: bytes, password: str) -> OpenedStore:
    if not jks.is_jks(data) and data[:1] == b"\x30":
        raise KeystoreFormatError("not a JKS keystore: this looks like a PKCS12 file; upload it with type PKCS12")
    out = OpenedStore("JKS", _store_password=password)
    try:
        parsed = jks.read(data, password)
    except WrongPasswordError as exc:
        parsed = jks.read(data, None)
        out.password_error = str(exc)
    out._jks = parsed
    out.key_aliases = [e.alias for e in parsed.private_keys]
    for entry in parsed.private_keys:
        for der in entry.chain:
            _certificate(der, entry.alias)
    out.trusted = {e.alias: _certificate(e.certificate, e.alias) for e in parsed.certificates}
    return out


def _check_pfx(data: bytes) -> None:
    """A PKCS12 PFX is SEQUENCE { INTEGER 3, ContentInfo, [MacData] }: tell a malformed file from a
    wrong password before asking ``cryptography`` (which reports both the same way)."""
    if jks.is_jks(data):
        raise KeystoreFormatError("not a PKCS12 keystore: this is a JKS file; upload it with type JKS")
    if data[:5] == b"\x30\x80\x02\x01\x03":
        return  # BER with indefinite lengths (some Windows exports): left to the PKCS12 loader
    try:
        tag, value, end = _der.read_tlv(data)
        parts = _der.children(value)
    except _der.DerError as exc:
        raise KeystoreFormatError(f"not a PKCS12 keystore ({exc})") from None
    if tag != _der.SEQUENCE or end != len(data) or len(parts) < 2 or parts[0] != (_der.INTEGER, b"\x03"):
        raise KeystoreFormatError("not a PKCS12 keystore (no PFX version 3 structure)")


def _load_p12(data: bytes, password: str) -> pkcs12.PKCS12KeyAndCertificates:
    attempts: list[bytes | None] = [password.encode()] + ([None] if password == "" else [])
    for attempt in attempts:
        try:
            return pkcs12.load_pkcs12(data, attempt)
        except ValueError:
            continue
    raise WrongPasswordError("the keystore password is incorrect (or the PKCS12 file is corrupt)")


def _name(cert: pkcs12.PKCS12Certificate) -> str | None:
    return cert.friendly_name.decode("utf-8", "replace") if cert.friendly_name else None


def _order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    chain = [leaf]
    pool = list(others)
    while pool:
        issuer = next((c for c in pool if c.subject == chain[-1].issuer and c != chain[-1]), None)
        if issuer is None:
            break
        chain.append(issuer)
        pool.remove(issuer)
    return tuple(chain)


def _open_pkcs12(data: bytes, password: str) -> OpenedStore:
    _check_pfx(data)
    out = OpenedStore("PKCS12", _store_password=password)
    try:
        loaded = _load_p12(data, password)
    except WrongPasswordError as exc:
        out.password_error = str(exc)
        return out
    named = [c for c in loaded.additional_certs if _name(c)]
    unnamed = [c.certificate for c in loaded.additional_certs if not _name(c)]
    if loaded.key is not None and loaded.cert is not None:
        alias = _name(loaded.cert) or "1"
        out.key_aliases = [alias]
        out._p12_key = KeyPair(alias, loaded.key, _order_chain(loaded.cert.certificate, unnamed))
    elif loaded.cert is not None:
        named.insert(0, loaded.cert)
    out.trusted = _unique_names([(_name(c), c.certificate) for c in named])
    if loaded.key is None:
        out.trusted.update(_unique_names([(None, c) for c in unnamed], taken=set(out.trusted)))
    return out


def _open_pem(data: bytes) -> OpenedStore:
    if b"-----BEGIN" not in data:
        raise KeystoreFormatError("not a PEM bundle (no '-----BEGIN CERTIFICATE-----' block)")
    if b"PRIVATE KEY-----" in data:
        raise KeystoreFormatError("a PEM truststore must hold certificates only, not private keys")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeystoreFormatError(f"the PEM bundle cannot be read: {exc}") from None
    return OpenedStore("PEM", trusted=_unique_names([(None, c) for c in certs]))


def _unique_names(items: list[tuple[str | None, x509.Certificate]],
                  taken: set[str] | None = None) -> dict[str, x509.Certificate]:
    """Aliases for certificates: the given name, else the subject's common name made alias-like."""
    out: dict[str, x509.Certificate] = {}
    used = set(taken or ())
    for index, (name, cert) in enumerate(items, start=1):
        if not name:
            cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            raw = str(cns[0].value) if cns else ""
            name = re.sub(r"[^a-z0-9_.-]+", "_", raw.lower()).strip("_") or f"cert{index}"
        candidate, n = name, 2
        while candidate in used:
            candidate, n = f"{name}_{n}", n + 1
        used.add(candidate)
        out[candidate] = cert
    return out


__all__ = ["KEYSTORE_TYPES", "PROVIDERS", "TRUSTSTORE_TYPES", "KeyPair", "KeystoreError", "OpenedStore",
           "open_store"]
