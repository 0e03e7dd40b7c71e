"""Stored keystores and truststores: the asset body, sealing its secrets, judging whether it loads,
and opening it again for use (TLS contexts, signing keys).

Asset kinds ``keystore`` and ``truststore``, id = the store's name. The body keeps the file, the
store password and the key passwords only as :class:`~portico.security.secrets.SecretBox`
ciphertexts (``sealed*`` fields); everything else (aliases, load status) is plain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509

from portico.security.keystore.errors import KeystoreError, WrongPasswordError
from portico.security.keystore.formats import KeyPair, OpenedStore, open_store
from portico.security.secrets import SecretBox, SecretError
from portico.store import StoreTransaction
from portico.store.db import KEYSTORE_LOCK

KEYSTORE = "keystore"
TRUSTSTORE = "truststore"
# The default stores (``/configurations/keystore``): one settings document.
DEFAULTS_KIND = "settings"
DEFAULTS_ID = "keystore"
DEFAULT_FIELDS = ("keystoreName", "signingAlias", "truststoreName", "outboundKeystoreName", "outboundKeyAlias",
                  "outboundTruststoreName")


class KeystoreUnavailable(Exception):
    """A store or key asked for by name cannot be used; the message says which and why."""


@dataclass(frozen=True)
class KeyAliasConfig:
    """A key alias the administrator configured, with its password (None: none given)."""

    alias: str
    password: str | None


@dataclass(frozen=True)
class LoadStatus:
    loaded: bool
    warning: bool
    message: str | None
    bits: tuple[int, ...]


def judge_keystore(opened: OpenedStore, configured: list[KeyAliasConfig]) -> LoadStatus:
    """Whether a keystore loads with the given passwords. A wrong store password, or a wrong password
    for any configured key alias, leaves it not loaded (the reference still saves it). An alias
    without a password is tried with the store password; if that fails it is only a warning."""
    if opened.password_error:
        return LoadStatus(False, False, opened.password_error, tuple(0 for _ in configured))
    bits: list[int] = []
    errors: list[str] = []
    unset: list[str] = []
    for item in configured:
        try:
            opened.key(item.alias, item.password)
            bits.append(1)
        except WrongPasswordError as exc:
            bits.append(0)
            if item.password is None:
                unset.append(item.alias)
            else:
                errors.append(f"{item.alias!r}: {exc}")
        except KeyError:
            bits.append(0)
            errors.append(f"{item.alias!r}: no such private key in the file")
        except KeystoreError as exc:
            bits.append(0)
            errors.append(f"{item.alias!r}: {exc}")
    if errors:
        return LoadStatus(False, False, "key alias " + "; ".join(errors), tuple(bits))
    if not opened.key_aliases:
        return LoadStatus(True, True, "the keystore holds no private keys", tuple(bits))
    if not any(bits):
        return LoadStatus(True, True, "before using the keystore, give the password of at least one of its key "
                                      "aliases", tuple(bits))
    if unset:
        return LoadStatus(True, True, f"key alias(es) {', '.join(unset)} have no password; they cannot be used",
                          tuple(bits))
    return LoadStatus(True, False, None, tuple(bits))


def judge_truststore(opened: OpenedStore) -> LoadStatus:
    if opened.password_error:
        return LoadStatus(False, False, opened.password_error, ())
    if not opened.trusted:
        return LoadStatus(True, True, "the truststore holds no trusted certificates", ())
    return LoadStatus(True, False, None, ())


def _ctx(kind: str, name: str, what: str) -> str:
    return f"{kind}/{name}/{what}"


def seal_secrets(box: SecretBox, kind: str, name: str, data: bytes, password: str,
                 configured: list[KeyAliasConfig]) -> dict[str, Any]:
    """The ``sealed*`` fields of the body."""
    return {
        "sealedFile": box.seal(data, _ctx(kind, name, "file")),
        "sealedPassword": box.seal_text(password, _ctx(kind, name, "password")),
        "sealedKeyPasswords": [
            None if c.password is None else box.seal_text(c.password, _ctx(kind, name, f"key/{c.alias}"))
            for c in configured
        ],
    }


@dataclass(frozen=True)
class Unsealed:
    data: bytes
    password: str
    configured: list[KeyAliasConfig]


def unseal(box: SecretBox, kind: str, body: dict[str, Any]) -> Unsealed:
    """The file and passwords of a stored body; SecretError when this node's master key differs."""
    name = str(body["keyStoreName"])
    aliases: list[str] = list(body.get("pkAliases", []))
    tokens: list[str | None] = list(body.get("sealedKeyPasswords", []))
    configured = [
        KeyAliasConfig(alias, None if token is None else box.open_text(token, _ctx(kind, name, f"key/{alias}")))
        for alias, token in zip(aliases, tokens, strict=True)
    ]
    return Unsealed(box.open(body["sealedFile"], _ctx(kind, name, "file")),
                    box.open_text(body["sealedPassword"], _ctx(kind, name, "password")), configured)


async def _body(tx: StoreTransaction, kind: str, name: str) -> dict[str, Any]:
    row = await tx.get(kind, name)
    if row is None:
        raise KeystoreUnavailable(f"{kind} {name!r} does not exist")
    if not row.body.get("isLoaded"):
        raise KeystoreUnavailable(f"{kind} {name!r} is not loaded: {row.body.get('message')}")
    return row.body


def _open(box: SecretBox, kind: str, body: dict[str, Any]) -> tuple[OpenedStore, Unsealed]:
    try:
        secrets = unseal(box, kind, body)
        return open_store(secrets.data, body["keyStoreType"], secrets.password), secrets
    except (SecretError, KeystoreError) as exc:
        raise KeystoreUnavailable(f"{kind} {body['keyStoreName']!r} cannot be opened: {exc}") from None


async def hold_for_use(tx: StoreTransaction) -> None:
    """Called by a write that starts (or keeps) using a store, before it checks the store: the
    check and the write then commit before a replacement or delete of the store looks for its
    users, or after it has committed (the check then sees it). Writes of uses share the lock."""
    await tx.hold(KEYSTORE_LOCK, shared=True)


async def hold_for_change(tx: StoreTransaction) -> None:
    """Called by a replacement or delete of a store before it looks for the store's users
    (``usage.store_users``): no write of a new use can come between that look and the write."""
    await tx.hold(KEYSTORE_LOCK)


async def store_problem(tx: StoreTransaction, kind: str, name: str, key_alias: str | None = None) -> str | None:
    """Why the stored ``kind`` ``name`` (with ``key_alias``, for a keystore) cannot be used, or None;
    judged from the stored load status, without opening the file. For a write that is about to use
    the store: holds the keystore lock (:func:`hold_for_use`) first."""
    await hold_for_use(tx)
    row = await tx.get(kind, name)
    if row is None:
        return f"{kind} {name!r} does not exist"
    body = row.body
    if not body.get("isLoaded"):
        return f"{kind} {name!r} is not loaded: {body.get('message')}"
    if kind == TRUSTSTORE and not body.get("certificateAliases"):
        return f"truststore {name!r} holds no trusted certificates"
    if key_alias is None:
        return None
    by_lower = {str(a).lower(): str(a) for a in body.get("keyAliases", [])}
    stored = by_lower.get(key_alias.lower())
    if stored is None:
        return (f"keystore {name!r} has no key alias {key_alias!r} "
                f"(it has: {', '.join(body.get('keyAliases', [])) or 'none'})")
    loaded = {str(a).lower(): bit for a, bit in zip(body.get("pkAliases", []), body.get("bits", []), strict=False)}
    if not loaded.get(stored.lower()):
        return f"key alias {stored!r} of keystore {name!r} has no working password; give it in pkPasswordsList"
    return None


async def load_key_pair(tx: StoreTransaction, box: SecretBox, keystore: str, key_alias: str) -> KeyPair:
    """The private key ``key_alias`` of the stored keystore ``keystore``, with its chain."""
    body = await _body(tx, KEYSTORE, keystore)
    opened, secrets = _open(box, KEYSTORE, body)
    stored = opened.find_alias(key_alias)
    if stored is None:
        raise KeystoreUnavailable(f"keystore {keystore!r} has no private key {key_alias!r} "
                                  f"(it has: {', '.join(opened.key_aliases) or 'none'})")
    loaded = dict(zip(body.get("pkAliases", []), body.get("bits", []), strict=False))
    if not loaded.get(stored):
        raise KeystoreUnavailable(f"key alias {stored!r} of keystore {keystore!r} has no working password; "
                                  "give it in pkPasswordsList")
    password = next((c.password for c in secrets.configured if c.alias == stored), None)
    try:
        return opened.key(stored, password)
    except KeystoreError as exc:
        raise KeystoreUnavailable(f"key {key_alias!r} of keystore {keystore!r} cannot be used: {exc}") from None


async def load_trusted(tx: StoreTransaction, box: SecretBox, truststore: str) -> list[x509.Certificate]:
    """The trusted certificates of the stored truststore ``truststore``."""
    body = await _body(tx, TRUSTSTORE, truststore)
    opened, _ = _open(box, TRUSTSTORE, body)
    if not opened.trusted:
        raise KeystoreUnavailable(f"truststore {truststore!r} holds no trusted certificates")
    return list(opened.trusted.values())


async def store_version(tx: StoreTransaction, kind: str, name: str | None) -> tuple[int, int]:
    """Which version of a stored keystore or truststore: its revision, and when its row was made (a
    store deleted and uploaded again under the same name starts again at revision 1). (0, 0): no
    name; (-1, 0): no such store. What caches of things built from a store are keyed by."""
    if not name:
        return 0, 0
    row = await tx.get(kind, name)
    return (row.revision, row.created_at) if row is not None else (-1, 0)


async def read_defaults(tx: StoreTransaction) -> dict[str, str | None]:
    """The default stores for inbound and outbound connections (``/configurations/keystore``)."""
    row = await tx.get(DEFAULTS_KIND, DEFAULTS_ID)
    body = row.body if row else {}
    return {name: (body.get(name) or None) for name in DEFAULT_FIELDS}
