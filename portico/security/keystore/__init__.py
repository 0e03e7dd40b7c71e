"""Keystores and truststores: JKS (our own reader and writer), PKCS12 and PEM bundles; stored with
their secrets sealed by the master key; TLS contexts built from them (issue 5)."""

from portico.security.keystore.errors import KeystoreError, KeystoreFormatError, WrongPasswordError
from portico.security.keystore.formats import KeyPair, OpenedStore, open_store
from portico.security.keystore.records import KEYSTORE, TRUSTSTORE, KeystoreUnavailable
from portico.security.keystore.tls import client_context, client_context_for, server_context, server_context_for

__all__ = [
    "KEYSTORE", "TRUSTSTORE", "KeyPair", "KeystoreError", "KeystoreFormatError", "KeystoreUnavailable",
    "OpenedStore", "WrongPasswordError", "client_context", "client_context_for", "open_store", "server_context",
    "server_context_for",
]
