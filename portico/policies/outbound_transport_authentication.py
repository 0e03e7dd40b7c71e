"""``outboundTransportAuthentication`` (routing stage): credentials sent to the native service.

``transportSecurity.authType`` / ``authMode``:

* HTTP_BASIC + NEW: ``Authorization: Basic`` from ``httpAuthCredentials`` (userName, password).
* HTTP_BASIC + INCOMING_HTTP_BASIC_AUTH: forward the client's basic credentials (missing -> 401).
* OAUTH2 or JWT + NEW: ``Authorization: Bearer <oauth2Token>``.
* OAUTH2 + INCOMING_OAUTH_TOKEN, JWT + INCOMING_JWT: forward the client's bearer token (missing -> 401).
* API_KEY + NEW (Portico): header ``apiKeyHeader`` set to ``apiKey``.
* REMOVE_INCOMING_HTTP_HEADERS: the client's Authorization header is not forwarded.
* any type + TRANSPARENT: the request's Authorization goes through unchanged.

Credential values may hold ``${...}`` variables and aliases. NTLM, KERBEROS and ALIAS are not
supported yet (400 on write)."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field, model_validator

from portico.gateway.exchange import Exchange
from portico.gateway.variables import Template
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

_AUTHORIZATION = b"authorization"


class HttpAuthCredentials(PolicyConfig):
    userName: str = Field(description="User name sent to the native service.")
    password: str = Field(default="", description="Password; may hold variables.")
    domain: str | None = Field(default=None, description="Domain (NTLM; not used).")


class TransportSecurity(PolicyConfig):
    authType: Literal["HTTP_BASIC", "OAUTH2", "JWT", "API_KEY", "REMOVE_INCOMING_HTTP_HEADERS", "ALIAS", "NTLM",
                      "KERBEROS"] = Field(description="Kind of credentials sent to the native service.")
    authMode: Literal["NEW", "INCOMING_HTTP_BASIC_AUTH", "INCOMING_OAUTH_TOKEN", "INCOMING_JWT", "TRANSPARENT",
                      "INCOMING_KERBEROS"] = Field(default="NEW", description="New credentials or the client's.")
    httpAuthCredentials: HttpAuthCredentials | None = Field(default=None, description="Basic credentials (NEW).")
    oauth2Token: str | None = Field(default=None, description="Bearer token (OAUTH2/JWT, NEW).")
    apiKeyHeader: str | None = Field(default=None, description="Header name for the API key (API_KEY).")
    apiKey: str | None = Field(default=None, description="API key value (API_KEY).")
    alias: str | None = Field(default=None, description="HTTP transport security alias (not supported yet).")

    @model_validator(mode="after")
    def _consistent(self) -> TransportSecurity:
        kind, mode = self.authType, self.authMode
        if kind in ("ALIAS", "NTLM", "KERBEROS") or mode == "INCOMING_KERBEROS":
            raise ValueError(f"authType {kind} / authMode {mode} is not supported yet")
        if mode == "TRANSPARENT" or kind == "REMOVE_INCOMING_HTTP_HEADERS":
            return self
        allowed = {"HTTP_BASIC": ("NEW", "INCOMING_HTTP_BASIC_AUTH"), "OAUTH2": ("NEW", "INCOMING_OAUTH_TOKEN"),
                   "JWT": ("NEW", "INCOMING_JWT"), "API_KEY": ("NEW",)}[kind]
        if mode not in allowed:
            raise ValueError(f"authMode {mode} does not fit authType {kind} (expected one of {list(allowed)})")
        if mode == "NEW":
            if kind == "HTTP_BASIC" and self.httpAuthCredentials is None:
                raise ValueError("httpAuthCredentials is required for HTTP_BASIC with authMode NEW")
            if kind in ("OAUTH2", "JWT") and not self.oauth2Token:
                raise ValueError(f"oauth2Token is required for {kind} with authMode NEW")
            if kind == "API_KEY" and (not self.apiKeyHeader or not self.apiKey):
                raise ValueError("apiKeyHeader and apiKey are required for API_KEY")
        return self


class OutboundTransportAuthenticationConfig(PolicyConfig):
    transportSecurity: TransportSecurity = Field(description="The outbound credentials.")


class OutboundTransportAuthentication(PolicyHandler):
    template_key = "outboundTransportAuthentication"
    stage = "routing"
    title = "Outbound Authentication - Transport"
    Config = OutboundTransportAuthenticationConfig

    def __init__(self, config: OutboundTransportAuthenticationConfig) -> None:
        super().__init__(config)
        sec = config.transportSecurity
        self._kind, self._mode = sec.authType, sec.authMode
        self._header = _AUTHORIZATION
        self._value: Template | None = None
        self._prefix = b""
        if sec.authMode == "NEW":
            if sec.authType == "HTTP_BASIC":
                creds = sec.httpAuthCredentials
                assert creds is not None
                self._value = Template(f"{creds.userName}:{creds.password}")
                self._prefix = b"Basic "
            elif sec.authType in ("OAUTH2", "JWT"):
                self._value = Template(sec.oauth2Token or "")
                self._prefix = b"Bearer "
            elif sec.authType == "API_KEY":
                self._header = (sec.apiKeyHeader or "").lower().encode("latin-1")
                self._value = Template(sec.apiKey or "")

    def run(self, ex: Exchange) -> Violation | None:
        if self._mode == "TRANSPARENT":
            return None
        if self._kind == "REMOVE_INCOMING_HTTP_HEADERS":
            ex.remove_header(_AUTHORIZATION)
            return None
        if self._value is not None:
            text = self._value.render(ex).encode("utf-8")
            if self._prefix == b"Basic ":
                text = base64.b64encode(text)
            ex.set_header(self._header, self._prefix + text)
            return None
        scheme = b"basic " if self._mode == "INCOMING_HTTP_BASIC_AUTH" else b"bearer "
        incoming = ex.request.header(_AUTHORIZATION)
        if incoming is None or not incoming.lower().startswith(scheme) or len(incoming) <= len(scheme):
            challenge = b'Basic realm="api"' if scheme == b"basic " else b"Bearer"
            return Violation(401, "OUTBOUND_CREDENTIALS_MISSING",
                             f"The native service needs the client's {scheme.decode().strip()} credentials, "
                             "which the request does not carry", headers=((b"www-authenticate", challenge),))
        ex.set_header(_AUTHORIZATION, incoming)
        return None
