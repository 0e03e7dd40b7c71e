"""What can go wrong opening a keystore; every message names the problem for the person uploading it."""

from __future__ import annotations


class KeystoreError(ValueError):
    """Base class: the keystore cannot be used."""


class KeystoreFormatError(KeystoreError):
    """The bytes are not a keystore of the declared type (wrong type, truncated, corrupt)."""


class WrongPasswordError(KeystoreError):
    """A store or key password does not open what it should."""
