"""Secrets at rest: AES-256-GCM under one master key per installation.

The master key comes from ``PORTICO_MASTER_KEY`` (base64 of 32 bytes, or else a passphrase that is
stretched with scrypt) or, when that is unset, from ``<data dir>/master.key``, created with mode
0600 on first start. The store holds only ciphertexts, so a copy of the database alone reveals no
keystore password or private key.

Nodes that share one database (PostgreSQL) must share the master key: set the same
``PORTICO_MASTER_KEY`` on all of them, or copy one node's ``master.key`` to the others. A ciphertext
carries the id of the key that sealed it, so a node with another key says so instead of failing
obscurely.

Stored form: ``v1:<key id>:<base64(nonce | ciphertext | tag)>``; the associated data names what the
secret belongs to (e.g. ``keystore/NAME/password``), so a ciphertext moved to another record does
not decrypt."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("portico.secrets")
ENV_VAR = "PORTICO_MASTER_KEY"
KEY_FILE = "master.key"
_PREFIX = "v1"
_PASSPHRASE_SALT = b"portico master key v1"
_MIN_PASSPHRASE = 16


class MasterKeyError(ValueError):
    """The master key cannot be had as configured; the message says what to change."""


class SecretError(ValueError):
    """A stored secret does not decrypt with this node's master key."""


class SecretBox:
    """Seals and opens secrets with the master key."""

    def __init__(self, key: bytes, source: str = "") -> None:
        if len(key) != 32:
            raise MasterKeyError("the master key must be 32 bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"portico key id\0" + key).hexdigest()[:12]
        self.source = source

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return f"{_PREFIX}:{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str, context: str) -> bytes:
        version, _, rest = token.partition(":")
        key_id, _, payload = rest.partition(":")
        if version != _PREFIX or not payload:
            raise SecretError(f"the stored secret for {context} is not in a known format")
        if key_id != self.key_id:
            # This node's key id stays in the log: from a passphrase's id a guess can be checked offline.
            log.warning("a secret for %s was sealed with master key %s; this node's is %s", context, key_id,
                        self.key_id)
            raise SecretError(f"the secret for {context} was sealed with another master key (id {key_id}): nodes "
                              f"sharing a database must share {ENV_VAR} or the {KEY_FILE} file")
        try:
            raw = base64.b64decode(payload, validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretError(f"the stored secret for {context} does not decrypt (altered or misplaced)") from None

    def seal_text(self, text: str, context: str) -> str:
        return self.seal(text.encode("utf-8"), context)

    def open_text(self, token: str, context: str) -> str:
        return self.open(token, context).decode("utf-8")


def _from_env(value: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 32:
        return raw
    if len(value) < _MIN_PASSPHRASE:
        raise MasterKeyError(f"{ENV_VAR} must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`) or a "
                             f"passphrase of at least {_MIN_PASSPHRASE} characters")
    # A fixed salt: every node sharing the database must derive the same key from the same phrase.
    return hashlib.scrypt(value.encode("utf-8"), salt=_PASSPHRASE_SALT, n=2**15, r=8, p=1, maxmem=64 * 1024 * 1024,
                          dklen=32)


def _read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); restrict it with chmod 600", path, mode)
    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise MasterKeyError(f"{path} does not hold a base64 master key of 32 bytes")
    return raw


def _create_key_file(path: Path) -> bytes:
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(base64.b64encode(key).decode() + "\n")
    log.info("created the master key %s; nodes sharing this database need the same file or %s", path, ENV_VAR)
    return key


def load_secret_box(data_dir: Path) -> SecretBox:
    """The master key of this installation (see the module docstring for where it comes from)."""
    value = os.environ.get(ENV_VAR)
    if value:
        return SecretBox(_from_env(value), source=ENV_VAR)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    try:
        return SecretBox(_create_key_file(path), source=str(path))
    except FileExistsError:
        return SecretBox(_read_key_file(path), source=str(path))
