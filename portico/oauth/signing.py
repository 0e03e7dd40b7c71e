"""The local authorization server's signing key, its ``kid`` and the JWKS.

The key is the RSA private key named by ``local``'s ``sslConfig`` (keystore + key alias), or, when
none is configured, a built-in RSA key made on first start and stored sealed with the master key
(so JWTs work out of the box and survive restarts). The ``kid`` is the key's RFC 7638 thumbprint:
stable across restarts and nodes, and different for a different key. When the key changes, the old
public key stays in the JWKS until every JWT it signed has expired (``retire``). Either key is
imported once per process (per PEM, or per keystore version and alias), not at every snapshot build.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from portico.oauth.config import LOCAL_ID, AuthServer, default_local
from portico.security.keystore.records import KEYSTORE, KeystoreUnavailable, load_key_pair, store_version
from portico.security.secrets import SecretBox
from portico.store import ConflictError, Store, StoreTransaction
from portico.store.db import now_ms

KIND = "oauthSigningKey"
BUILTIN_ID = "builtin"
RETIRED_ID = "retired"
_CONTEXT = "oauthSigningKey/builtin/privateKey"
# How a token says what it is for. Access tokens (getJsonWebToken) carry the RFC 9068 header type
# ``at+jwt`` and ``token_use: access``; ID tokens ``JWT`` and ``token_use: id`` (as AWS Cognito
# names it). The gateway accepts only access tokens for API access.
ACCESS_TOKEN_TYPE = "at+jwt"
ACCESS_TOKEN_USE = "access"
ID_TOKEN_USE = "id"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    key: RSAKey
    source: str  # "builtin" or "<keystore>/<key alias>"

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        return jwt.encode({"alg": self.algorithm, "kid": self.kid, "typ": typ}, claims, self.key,
                          algorithms=[self.algorithm])


def _rsa_key(private_key: Any, where: str) -> RSAKey:
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise KeystoreUnavailable(f"{where} is not an RSA key; JWTs are signed with RS256, RS384 or RS512")
    if private_key.key_size < 2048:
        raise KeystoreUnavailable(f"{where} has {private_key.key_size} bits; RSA signing keys need at least 2048")
    return RSAKey.import_key(private_key)


_IMPORTED: dict[bytes, RSAKey] = {}  # SHA-256 of a PEM -> its key (a few keys at most per process)
# (keystore, its revision and creation time, key alias) -> the key: the same few keys per process
_FROM_KEYSTORE: dict[tuple[str, tuple[int, int], str], RSAKey] = {}


def _builtin_key(pem: bytes) -> RSAKey:
    """The built-in key from its PEM, imported once: importing checks the RSA key (tens of ms),
    and every snapshot build asks for the JWKS."""
    digest = hashlib.sha256(pem).digest()
    key = _IMPORTED.get(digest)
    if key is None:
        if len(_IMPORTED) >= 16:
            _IMPORTED.clear()
        key = _IMPORTED[digest] = RSAKey.import_key(pem)
    return key


async def _keystore_key(tx: StoreTransaction, box: SecretBox, keystore: str, key_alias: str) -> RSAKey:
    """The key ``key_alias`` of ``keystore``, imported once per version of the keystore: opening the
    keystore and checking the RSA key take tens of ms, and every snapshot build asks for the JWKS.
    The version is the row's revision and creation time (a keystore deleted and uploaded again under
    the same name starts again at revision 1)."""
    cache_key = (keystore, await store_version(tx, KEYSTORE, keystore), key_alias)
    key = _FROM_KEYSTORE.get(cache_key)
    if key is None:
        pair = await load_key_pair(tx, box, keystore, key_alias)
        key = _rsa_key(pair.private_key, f"key {key_alias!r} of keystore {keystore!r}")
        if len(_FROM_KEYSTORE) >= 16:
            _FROM_KEYSTORE.clear()
        _FROM_KEYSTORE[cache_key] = key
    return key


async def ensure_builtin_key(store: Store, box: SecretBox) -> None:
    """Make the built-in signing key on first start (any node; the first writer wins)."""
    async with store.read() as tx:
        if await tx.get(KIND, BUILTIN_ID) is not None:
            return
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        async with store.transaction() as tx:
            if await tx.get(KIND, BUILTIN_ID) is None:
                await tx.insert(KIND, BUILTIN_ID, {"sealed": box.seal(pem, _CONTEXT), "created": now_ms()})
    except ConflictError:  # (what StoreTransaction.insert raises for a duplicate key)
        pass  # another node made it first


async def load_local(tx: StoreTransaction) -> AuthServer:
    row = await tx.get("alias", LOCAL_ID)
    return AuthServer.model_validate(row.body) if row else default_local()


async def signing_key(tx: StoreTransaction, box: SecretBox, server: AuthServer) -> SigningKey:
    """The key ``server`` (``local``) signs with; KeystoreUnavailable says why it cannot be used."""
    algorithm = server.tokenGeneratorConfig.algorithm
    ssl = server.sslConfig
    if ssl.keyStoreAlias and ssl.keyAlias:
        key = await _keystore_key(tx, box, ssl.keyStoreAlias, ssl.keyAlias)
        source = f"{ssl.keyStoreAlias}/{ssl.keyAlias}"
    else:
        row = await tx.get(KIND, BUILTIN_ID)
        if row is None:
            raise KeystoreUnavailable("the built-in signing key has not been made yet")
        key = _builtin_key(box.open(str(row.body["sealed"]), _CONTEXT))
        source = BUILTIN_ID
    return SigningKey(kid=key.thumbprint(), algorithm=algorithm, key=key, source=source)


async def retire(tx: StoreTransaction, old: SigningKey, keep_seconds: int) -> None:
    """Keep ``old``'s public key in the JWKS for ``keep_seconds`` (tokens it signed stay valid)."""
    row = await tx.get(KIND, RETIRED_ID)
    now = now_ms()
    keys = [k for k in (row.body.get("keys", []) if row else []) if k.get("until", 0) > now and k["kid"] != old.kid]
    keys.append({**old.public_jwk(), "until": now + keep_seconds * 1000})
    if row is None:
        await tx.insert(KIND, RETIRED_ID, {"keys": keys})
    else:
        await tx.update(KIND, RETIRED_ID, {"keys": keys}, row.revision)


def keep_seconds(server: AuthServer) -> int:
    """How long a key rotated out stays published: until the last JWT it signed has expired."""
    return server.tokenGeneratorConfig.expiry * 60 + server.clock_skew


async def key_from_keystore(tx: StoreTransaction, box: SecretBox, keystore: str) -> SigningKey | None:
    """``local``'s signing key when it comes from the keystore ``keystore`` (None otherwise, or when
    it cannot be used): taken before the keystore is replaced, to retire it if the key changes."""
    server = await load_local(tx)
    if server.sslConfig.keyStoreAlias != keystore:
        return None
    try:
        return await signing_key(tx, box, server)
    except KeystoreUnavailable:
        return None


async def retire_if_replaced(tx: StoreTransaction, box: SecretBox, old: SigningKey | None) -> None:
    """After a keystore was replaced (same transaction): if ``local``'s key changed, keep the old
    public key in the JWKS until its JWTs expire, as a change of ``sslConfig`` does."""
    if old is None:
        return
    server = await load_local(tx)
    try:
        new = await signing_key(tx, box, server)
    except KeystoreUnavailable:
        new = None
    if new is None or new.kid != old.kid:
        await retire(tx, old, keep_seconds(server))


async def jwks(tx: StoreTransaction, box: SecretBox) -> dict[str, Any]:
    """The JWKS: the current signing key, then keys rotated out whose tokens may still be valid."""
    server = await load_local(tx)
    keys: list[dict[str, Any]] = []
    try:
        keys.append((await signing_key(tx, box, server)).public_jwk())
    except KeystoreUnavailable:
        pass
    row = await tx.get(KIND, RETIRED_ID)
    now = now_ms()
    for key in row.body.get("keys", []) if row else []:
        if key.get("until", 0) > now and all(k["kid"] != key["kid"] for k in keys):
            keys.append({k: v for k, v in key.items() if k != "until"})
    return {"keys": keys}


def at_hash(access_token: str, algorithm: str) -> str:
    """OpenID Connect ``at_hash``: left half of the token's hash, base64url."""
    digest = {"RS256": hashlib.sha256, "RS384": hashlib.sha384, "RS512": hashlib.sha512}[algorithm](
        access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def now_seconds() -> int:
    return int(time.time())


__all__ = ["ACCESS_TOKEN_TYPE", "ACCESS_TOKEN_USE", "ID_TOKEN_USE", "SigningKey", "at_hash", "ensure_builtin_key",
           "jwks", "keep_seconds", "key_from_keystore", "load_local", "retire", "retire_if_replaced", "signing_key"]
