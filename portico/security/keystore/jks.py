"""Java KeyStore (JKS) files: read and write, written from the public description of the format.

Layout (big-endian, as ``java.io.DataOutputStream`` writes it)::

    u4 magic 0xFEEDFEED | u4 version (1 or 2) | u4 entry count
    entry: u4 tag | UTF alias | u8 creation time (ms)
      tag 1, private key: u4 length + EncryptedPrivateKeyInfo (DER) | u4 chain length |
                          per certificate: [v2: UTF type "X.509"] u4 length + DER
      tag 2, trusted certificate: [v2: UTF type] u4 length + DER
    20 bytes: SHA-1(password as UTF-16BE | "Mighty Aphrodite" | everything before)

``UTF`` is Java's modified UTF-8 with a u2 byte count. A private key is protected by Sun's "JKS"
key protector (OID 1.3.6.1.4.1.42.2.17.1.1): ``salt(20) | key XOR keystream | SHA-1(password | key)``,
where the keystream is the chain ``d0 = salt, d(i+1) = SHA-1(password | d(i))``. It is a weak
scheme kept only for compatibility: Portico encrypts stored keystores again with its master key.

The Python JKS library (pyjks) is unmaintained, so this module is ours (issue 5)."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field

from portico.security.keystore import _der
from portico.security.keystore.errors import KeystoreFormatError, WrongPasswordError

MAGIC = 0xFEEDFEED
JCEKS_MAGIC = 0xCECECECE
KEY_PROTECTOR_OID = "1.3.6.1.4.1.42.2.17.1.1"
_WHITENER = b"Mighty Aphrodite"
_PRIVATE_KEY = 1
_TRUSTED_CERT = 2
_MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class PrivateKeyEntry:
    """A private key (still protected by its key password) and its certificate chain, leaf first."""

    alias: str
    timestamp: int
    protected_key: bytes
    chain: tuple[bytes, ...]

    def decrypt(self, password: str) -> bytes:
        """The PKCS#8 ``PrivateKeyInfo`` DER; WrongPasswordError when ``password`` is not the key's."""
        return recover_key(self.protected_key, password)


@dataclass(frozen=True)
class TrustedCertEntry:
    alias: str
    timestamp: int
    certificate: bytes


Entry = PrivateKeyEntry | TrustedCertEntry


@dataclass
class JksFile:
    entries: list[Entry] = field(default_factory=list)
    verified: bool = False  # the integrity digest was checked against a password

    @property
    def private_keys(self) -> list[PrivateKeyEntry]:
        return [e for e in self.entries if isinstance(e, PrivateKeyEntry)]

    @property
    def certificates(self) -> list[TrustedCertEntry]:
        return [e for e in self.entries if isinstance(e, TrustedCertEntry)]


def is_jks(data: bytes) -> bool:
    return len(data) >= 4 and struct.unpack(">I", data[:4])[0] == MAGIC


def _password_bytes(password: str) -> bytes:
    # Java hands the password over as a char[]: two bytes per UTF-16 code unit, high byte first.
    return password.encode("utf-16-be", "surrogatepass")


def _modified_utf8(text: str) -> bytes:
    """Java's ``writeUTF``: UTF-8 over UTF-16 code units (supplementary characters as two 3-byte
    surrogates) with NUL as ``C0 80``, after a u2 byte count."""
    raw = text.encode("utf-16-be", "surrogatepass")
    out = bytearray()
    for i in range(0, len(raw), 2):
        unit = int.from_bytes(raw[i:i + 2], "big")
        if unit == 0:
            out += b"\xc0\x80"
        else:
            out += chr(unit).encode("utf-8", "surrogatepass")
    if len(out) > 0xFFFF:
        raise ValueError("alias longer than 65535 bytes in modified UTF-8")
    return struct.pack(">H", len(out)) + bytes(out)


def _decode_modified_utf8(raw: bytes) -> str:
    try:
        text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
        # Pair up surrogates written as separate 3-byte sequences.
        return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be")
    except UnicodeError:
        raise KeystoreFormatError("an alias in the keystore is not valid modified UTF-8") from None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise KeystoreFormatError("the JKS file is truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u2(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u4(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def u8(self) -> int:
        return int(struct.unpack(">q", self.take(8))[0])

    def utf(self) -> str:
        return _decode_modified_utf8(self.take(self.u2()))

    def blob(self) -> bytes:
        return self.take(self.u4())


def _certificate(reader: _Reader, version: int) -> bytes:
    if version == 2:
        kind = reader.utf()
        if kind != "X.509":
            raise KeystoreFormatError(f"certificate type {kind!r} is not supported (only X.509)")
    return reader.blob()


def read(data: bytes, password: str | None) -> JksFile:
    """Parse a JKS file. With a password the integrity digest must match (WrongPasswordError if not);
    with None the entries are read unverified (to list aliases of a store whose password is wrong)."""
    if len(data) >= 4 and struct.unpack(">I", data[:4])[0] == JCEKS_MAGIC:
        raise KeystoreFormatError("this is a JCEKS keystore; convert it to JKS or PKCS12 with keytool")
    if not is_jks(data):
        raise KeystoreFormatError("not a JKS keystore (the file does not start with the JKS magic number)")
    if len(data) < 12 + 20:
        raise KeystoreFormatError("the JKS file is truncated")
    reader = _Reader(data[:-20])
    reader.take(4)
    version = reader.u4()
    if version not in (1, 2):
        raise KeystoreFormatError(f"JKS version {version} is not supported")
    count = reader.u4()
    if count > _MAX_ENTRIES:
        raise KeystoreFormatError(f"the JKS file claims {count} entries")
    out = JksFile()
    for _ in range(count):
        tag = reader.u4()
        alias = reader.utf()
        timestamp = reader.u8()
        if tag == _PRIVATE_KEY:
            key = reader.blob()
            chain_length = reader.u4()
            chain = tuple(_certificate(reader, version) for _ in range(chain_length))
            out.entries.append(PrivateKeyEntry(alias, timestamp, key, chain))
        elif tag == _TRUSTED_CERT:
            out.entries.append(TrustedCertEntry(alias, timestamp, _certificate(reader, version)))
        else:
            raise KeystoreFormatError(f"entry {alias!r} has the unknown tag {tag} (secret keys need JCEKS)")
    if reader.pos != len(reader.data):
        raise KeystoreFormatError("the JKS file has bytes after its last entry")
    if password is not None:
        expected = _integrity(password, data[:-20])
        if not hmac.compare_digest(expected, data[-20:]):
            raise WrongPasswordError("the keystore password is incorrect (or the file was altered)")
        out.verified = True
    return out


def _integrity(password: str, body: bytes) -> bytes:
    return hashlib.sha1(_password_bytes(password) + _WHITENER + body).digest()


def write(entries: list[Entry], password: str) -> bytes:
    """A version-2 JKS file holding ``entries``, sealed with ``password``."""
    out = bytearray(struct.pack(">III", MAGIC, 2, len(entries)))
    for entry in entries:
        if isinstance(entry, PrivateKeyEntry):
            out += struct.pack(">I", _PRIVATE_KEY) + _modified_utf8(entry.alias) + struct.pack(">q", entry.timestamp)
            out += struct.pack(">I", len(entry.protected_key)) + entry.protected_key
            out += struct.pack(">I", len(entry.chain))
            for cert in entry.chain:
                out += _modified_utf8("X.509") + struct.pack(">I", len(cert)) + cert
        else:
            out += struct.pack(">I", _TRUSTED_CERT) + _modified_utf8(entry.alias) + struct.pack(">q", entry.timestamp)
            out += _modified_utf8("X.509") + struct.pack(">I", len(entry.certificate)) + entry.certificate
    return bytes(out) + _integrity(password, bytes(out))


def _keystream(password: bytes, salt: bytes, length: int) -> bytes:
    stream = bytearray()
    digest = salt
    while len(stream) < length:
        digest = hashlib.sha1(password + digest).digest()
        stream += digest
    return bytes(stream[:length])


def protect_key(pkcs8: bytes, password: str, salt: bytes | None = None) -> bytes:
    """Protect a PKCS#8 ``PrivateKeyInfo`` with the JKS key protector; returns EncryptedPrivateKeyInfo DER."""
    pw = _password_bytes(password)
    salt = salt if salt is not None else os.urandom(20)
    body = bytes(a ^ b for a, b in zip(pkcs8, _keystream(pw, salt, len(pkcs8)), strict=True))
    sealed = salt + body + hashlib.sha1(pw + pkcs8).digest()
    algorithm = _der.encode(_der.SEQUENCE, _der.encode_oid(KEY_PROTECTOR_OID) + _der.encode(_der.NULL, b""))
    return _der.encode(_der.SEQUENCE, algorithm + _der.encode(_der.OCTET_STRING, sealed))


def recover_key(protected: bytes, password: str) -> bytes:
    """Undo :func:`protect_key`; WrongPasswordError when the check digest does not match."""
    try:
        tag, value, end = _der.read_tlv(protected)
        parts = _der.children(value)
        if tag != _der.SEQUENCE or end != len(protected) or len(parts) != 2:
            raise _der.DerError("not an EncryptedPrivateKeyInfo")
        (alg_tag, alg), (data_tag, sealed) = parts
        algorithm = _der.children(alg)
        if alg_tag != _der.SEQUENCE or data_tag != _der.OCTET_STRING or not algorithm or algorithm[0][0] != _der.OID:
            raise _der.DerError("not an EncryptedPrivateKeyInfo")
        oid = _der.decode_oid(algorithm[0][1])
    except _der.DerError as exc:
        raise KeystoreFormatError(f"a protected private key is malformed: {exc}") from None
    if oid != KEY_PROTECTOR_OID:
        raise KeystoreFormatError(f"private key protected with algorithm {oid}, not the JKS key protector")
    if len(sealed) < 40:
        raise KeystoreFormatError("a protected private key is truncated")
    pw = _password_bytes(password)
    salt, body, check = sealed[:20], sealed[20:-20], sealed[-20:]
    plain = bytes(a ^ b for a, b in zip(body, _keystream(pw, salt, len(body)), strict=True))
    if not hmac.compare_digest(hashlib.sha1(pw + plain).digest(), check):
        raise WrongPasswordError("the key password is incorrect")
    return plain
