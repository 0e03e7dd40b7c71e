"""A small standards-following OAuth2 / OpenID Connect server on a loopback port, for what a second
Portico node cannot play: JWKS rotation on demand (and counting JWKS fetches), tokens signed with
keys or algorithms of the test's choosing, RFC 7662 introspection of opaque tokens, and RFC 7591
dynamic client registration with vendor field names (recording each request).

Paths: ``/.well-known/openid-configuration``, ``/jwks``, ``/token`` (client_credentials),
``/introspect``, ``/register`` (POST) and ``/register/{client_id}`` (PUT, DELETE). Misbehaviour on
demand: ``token_answer`` (raw body of a 200 token answer), ``registration_error`` (status and
body of the registration endpoint), ``delete_status``, ``metadata_issuer`` (the issuer the
discovery document claims)."""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

INTROSPECTOR = ("introspector", "introspector-secret")
REGISTRAR_TOKEN = "registrar-token"


@dataclass
class OAuthServerState:
    issuer: str = ""
    keys: list[RSAKey] = field(default_factory=list)
    jwks_fetches: int = 0
    opaque: dict[str, dict[str, Any]] = field(default_factory=dict)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    introspections: list[str] = field(default_factory=list)  # the tokens it was asked about
    token_answer: bytes | None = None
    registration_error: tuple[int, bytes] | None = None
    delete_status: int = 204
    metadata_issuer: str | None = None
    # response field names of the registration endpoint (a vendor's implementation names)
    client_id_field: str = "client_id"
    client_secret_field: str = "client_secret"

    def new_key(self) -> RSAKey:
        return RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def rotate(self, keep_old: bool = False) -> str:
        """A new signing key first in the JWKS; the old ones dropped unless ``keep_old``."""
        key = self.new_key()
        self.keys = [key, *(self.keys if keep_old else [])]
        return key.thumbprint()

    def sign(self, claims: dict[str, Any] | None = None, key: RSAKey | None = None, alg: str = "RS256",
             kid: str | None = None, **overrides: Any) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "someone", "aud": "portico-tests", "iat": now, "exp": now + 300,
                "client_id": "ext-client", "scope": "read"}
        body.update(claims or {})
        body.update(overrides)
        header = {"alg": alg, "kid": kid if kid is not None else key.thumbprint()}
        return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])

    def issue_opaque(self, client_id: str, scope: str = "read", lifetime: int = 300) -> str:
        token = secrets.token_urlsafe(24)
        self.opaque[token] = {"active": True, "client_id": client_id, "scope": scope, "sub": client_id,
                              "iss": self.issuer, "exp": int(time.time()) + lifetime, "token_type": "Bearer"}
        return token


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


def _handler(state: OAuthServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any = None, raw: bytes | None = None) -> None:
            body = raw if raw is not None else b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if raw is None else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            base = state.issuer
            if self.path == "/.well-known/openid-configuration":
                self._send(200, {"issuer": state.metadata_issuer or base, "jwks_uri": f"{base}/jwks",
                                 "token_endpoint": f"{base}/token",
                                 "authorization_endpoint": f"{base}/authorize",
                                 "introspection_endpoint": f"{base}/introspect",
                                 "registration_endpoint": f"{base}/register",
                                 "grant_types_supported": ["client_credentials", "authorization_code", "urn:x"],
                                 "scopes_supported": ["read", "write"]})
            elif self.path == "/jwks":
                state.jwks_fetches += 1
                self._send(200, {"keys": [{**k.as_dict(private=False), "kid": k.thumbprint(), "use": "sig",
                                           "alg": "RS256"} for k in state.keys]})
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            raw = self._body()
            if self.path == "/introspect":
                if _basic(self.headers.get("Authorization")) != INTROSPECTOR:
                    self._send(401, {"error": "invalid_client"})
                    return
                token = dict(parse_qsl(raw.decode())).get("token", "")
                state.introspections.append(token)
                info = state.opaque.get(token)
                self._send(200, info if info and info["exp"] > time.time() else {"active": False})
            elif self.path == "/token":
                form = dict(parse_qsl(raw.decode()))
                if form.get("grant_type") != "client_credentials" or _basic(self.headers.get("Authorization")) \
                        is None:
                    self._send(400, {"error": "invalid_request"})
                    return
                if state.token_answer is not None:
                    self._send(200, raw=state.token_answer)
                    return
                self._send(200, {"access_token": REGISTRAR_TOKEN, "token_type": "Bearer", "expires_in": 60})
            elif self.path == "/register":
                if state.registration_error is not None:
                    self._send(state.registration_error[0], raw=state.registration_error[1])
                    return
                request = json.loads(raw or b"{}")
                state.registrations.append({"body": request, "authorization": self.headers.get("Authorization"),
                                            "headers": dict(self.headers)})
                client_id = request.get(state.client_id_field) or secrets.token_hex(8)
                secret = request.get(state.client_secret_field) or secrets.token_urlsafe(16)
                self._send(201, {**request, state.client_id_field: client_id, state.client_secret_field: secret})
            else:
                self._send(404, {"error": "not_found"})

        def do_PUT(self) -> None:
            raw = self._body()
            if self.path.startswith("/register/"):
                state.updates.append((self.path.rsplit("/", 1)[1], json.loads(raw or b"{}")))
                self._send(200, json.loads(raw or b"{}"))
            else:
                self._send(404, {"error": "not_found"})

        def do_DELETE(self) -> None:
            if self.path.startswith("/register/"):
                state.deletions.append(self.path.rsplit("/", 1)[1])
                self._send(state.delete_status, None if state.delete_status == 204 else {"error": "nope"})
            else:
                self._send(404, {"error": "not_found"})

    return Handler


@contextmanager
def running_oauth_server(tls: ssl.SSLContext | None = None) -> Iterator[OAuthServerState]:
    """The server on a loopback port; over HTTPS with ``tls`` (a server context)."""
    state = OAuthServerState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.issuer = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    state.rotate()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
