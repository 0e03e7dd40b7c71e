"""``ssl.SSLContext`` objects built from stored keystores and truststores.

:func:`server_context_for` and :func:`client_context_for` take store names (as configured on a
listener, an endpoint alias or ``/configurations/keystore``) and return a ready context in one call;
:func:`server_context` and :func:`client_context` do the same from already loaded keys and
certificates.

The ``ssl`` module loads a certificate chain only from a file: the key is written to a private
temporary file encrypted under a one-time passphrase, loaded, and the file removed at once, so the
key is never on disk in the clear."""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, PrivateFormat

from portico.security.keystore.formats import KeyPair
from portico.security.keystore.records import load_key_pair, load_trusted
from portico.security.secrets import SecretBox
from portico.store import Store

ClientAuth = Literal["none", "optional", "required"]
_VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def _load_key(context: ssl.SSLContext, key: KeyPair) -> None:
    passphrase = secrets.token_bytes(32).hex().encode()
    pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase))
    pem += b"".join(c.public_bytes(Encoding.PEM) for c in key.chain)
    fd, path = tempfile.mkstemp(prefix="portico-key-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        # load_cert_chain reads the key from the first file and the chain (leaf first) after it.
        context.load_cert_chain(path, password=passphrase)
    finally:
        os.unlink(path)


def _trust(context: ssl.SSLContext, trusted: Iterable[x509.Certificate]) -> None:
    pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in trusted)
    if not pem:
        raise ValueError("no trusted certificates to verify peers with")
    context.load_verify_locations(cadata=pem)


def server_context(key: KeyPair, trusted: Iterable[x509.Certificate] | None = None,
                   client_auth: ClientAuth = "none") -> ssl.SSLContext:
    """A TLS server context presenting ``key``; with ``client_auth`` "optional" or "required",
    client certificates are verified against ``trusted``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_key(context, key)
    if client_auth != "none":
        if trusted is None:
            raise ValueError("client certificates need a truststore to be verified against")
        _trust(context, trusted)
    context.verify_mode = _VERIFY_MODES[client_auth]
    return context


def client_context(trusted: Iterable[x509.Certificate] | None = None, key: KeyPair | None = None,
                   verify: bool = True) -> ssl.SSLContext:
    """A TLS client context verifying servers against ``trusted`` (None: the system's CA
    certificates), presenting ``key`` when the server asks for a client certificate. With
    ``verify=False`` no server certificate is checked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif trusted is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        _trust(context, trusted)
    if key is not None:
        _load_key(context, key)
    return context


async def server_context_for(store: Store, box: SecretBox, keystore: str, key_alias: str,
                             truststore: str | None = None, client_auth: ClientAuth = "none") -> ssl.SSLContext:
    """The server context for a listener configured with these store names.
    KeystoreUnavailable names what is missing or not loaded."""
    async with store.read() as tx:
        key = await load_key_pair(tx, box, keystore, key_alias)
        trusted = await load_trusted(tx, box, truststore) if truststore else None
    if client_auth != "none" and trusted is None:
        raise ValueError("client certificates need a truststore to be verified against")
    return await asyncio.to_thread(server_context, key, trusted, client_auth)


async def client_context_for(store: Store, box: SecretBox, truststore: str | None = None,
                             keystore: str | None = None, key_alias: str | None = None,
                             verify: bool = True) -> ssl.SSLContext:
    """The client context for outbound connections configured with these store names."""
    async with store.read() as tx:
        trusted = await load_trusted(tx, box, truststore) if truststore else None
        key = await load_key_pair(tx, box, keystore, key_alias) if keystore and key_alias else None
    return await asyncio.to_thread(client_context, trusted, key, verify)
