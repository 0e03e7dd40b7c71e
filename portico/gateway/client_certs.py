"""Client certificates: the one a TLS connection verified, the one a load balancer forwards in the
``customCertificateHeader`` (used only when the connection verified none), and identifying
applications by them (evaluatePolicy's ``httpsCertificate`` rule).

An application's ``httpsCertificate`` identifier holds certificates as the reference shows them
(base64 of the PEM text, ``LS0t...``), or as PEM, or as base64 DER. A caller is identified when the
certificate it presented is one of those, byte for byte: the SHA-256 of the DER encoding is the
index key (:data:`APPS_BY_CERT` in ``snap.extras``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
from typing import TYPE_CHECKING
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange
    from portico.gateway.snapshot import AppView, Snapshot
    from portico.policies.base import Violation

APPS_BY_CERT = "apps_by_certificate"  # snap.extras: SHA-256 of DER (hex) -> AppView
CERT_HEADER = "client_certificate_header"  # snap.extras: lower-cased header name (bytes), when configured


class TlsPeer:
    """The TLS side of one client connection; the verified client certificate, read on demand."""

    __slots__ = ("_fingerprint", "_ssl")

    def __init__(self, ssl_object: ssl.SSLObject | None) -> None:
        self._ssl = ssl_object
        self._fingerprint: str | None = None

    @property
    def certificate_der(self) -> bytes | None:
        """The client certificate the handshake verified (None: the client sent none)."""
        if self._ssl is None:
            return None
        return self._ssl.getpeercert(binary_form=True)

    @property
    def fingerprint(self) -> str | None:
        if self._fingerprint is None:
            der = self.certificate_der
            if der is not None:
                self._fingerprint = fingerprint(der)
        return self._fingerprint


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def certificate_der(text: str | bytes) -> bytes | None:
    """The DER encoding of a certificate given as PEM (maybe URL-encoded, as nginx forwards it),
    base64 of PEM, or base64 DER; None when it is none of those."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = text.strip()
    if "%" in text:
        text = unquote(text)
    try:
        if "-----BEGIN" not in text:
            decoded = _b64("".join(text.split())).decode("latin-1")
            if "-----BEGIN" not in decoded:  # base64 DER
                return x509.load_der_x509_certificate(decoded.encode("latin-1")).public_bytes(Encoding.DER)
            text = decoded
        # PEM, whatever its line breaks became on the way (load balancers often send spaces)
        body = text.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
        return x509.load_der_x509_certificate(_b64("".join(body.split()))).public_bytes(Encoding.DER)
    except (ValueError, IndexError, binascii.Error):
        return None


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def presented_fingerprint(ex: Exchange, snap: Snapshot) -> str | None:
    """The fingerprint of the caller's certificate: the one its TLS connection verified, else the
    one in the configured header. The header is for a load balancer that terminated TLS; a caller
    with a certificate of its own on the connection cannot claim another one in the header."""
    peer: TlsPeer | None = getattr(ex.request, "tls", None)  # plain-HTTP requests leave the slot unset
    found = peer.fingerprint if peer is not None else None
    header = snap.extras.get(CERT_HEADER)
    if found is None and header:
        value = ex.request.header(header)
        if value:
            der = certificate_der(value)
            return fingerprint(der) if der is not None else None
    return found


def by_certificate(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    """evaluatePolicy's ``httpsCertificate`` rule."""
    found = presented_fingerprint(ex, snap)
    if found is None:
        return None
    index: dict[str, AppView] = snap.extras.get(APPS_BY_CERT) or {}
    return index.get(found)
