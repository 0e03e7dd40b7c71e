"""Application strategies (``/strategies``) and the OAuth clients they define.

A strategy ties an application (``authStrategyIds``) to an authorization server
(``authServerAlias``). With ``dcrConfig`` the client is registered for it: by Portico itself for
``local`` (client id and secret generated here), or at an EXTERNAL server through its DCR provider.
Without ``dcrConfig`` it names an existing client (``clientId``) of an EXTERNAL server. The
``clientRegistration`` block is the read-only result. Client secrets are sealed at rest, shown in
full only in the answers that create or refresh them, and masked elsewhere.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from portico.oauth.config import GRANT_TYPES, INT32_MAX, MASK, ConfigError
from portico.security.secrets import SecretBox

KIND = "strategy"
TYPES = ("JWT_RSA", "JWT_HSA", "OPENID_CONNECT_RSA", "OPENID_CONNECT_HSA", "OAUTH2", "OAUTH2_LOCAL_RSA",
         "OAUTH2_LOCAL_HSA", "COMPOSITE")
SUPPORTED = ("OAUTH2", "OAUTH2_LOCAL_RSA", "OPENID_CONNECT_RSA", "JWT_RSA")
JWT_TYPES = ("JWT_RSA",)
# Schemes a redirect URI may never have (they run code or read local data in the browser).
FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob", "filesystem"})
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+-.")


def _int_text(value: Any, field: str, minimum: int, maximum: int = INT32_MAX) -> int | None:
    """A whole number sent as text or number; -1 (never/unlimited) or ``minimum``..``maximum``
    (bounded so it fits the token table's columns and JSON answers)."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if len(text) > 20:
        raise ValueError(f"{field} must be -1 or between {minimum} and {maximum}, got {text[:20]}...")
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{field} must be a whole number, got {value!r}") from None
    if number != -1 and not minimum <= number <= maximum:
        raise ValueError(f"{field} must be -1 or between {minimum} and {maximum}, got {number}")
    return number


def check_redirect_uri(uri: str, native: bool) -> None:
    """RFC 6749 3.1.2 / RFC 8252: absolute, no fragment; http(s) with a host, or (native apps only)
    a private-use scheme; never a scheme that runs code in the browser."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise ValueError(f"redirect URI {uri!r} is not a valid URI") from None
    scheme = parts.scheme.lower()
    if not scheme or parts.fragment or "#" in uri or any(c.isspace() or ord(c) < 32 for c in uri):
        raise ValueError(f"redirect URI {uri!r} must be absolute and have no fragment")
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"redirect URI {uri!r} has no host")
        return
    if scheme in FORBIDDEN_SCHEMES or not set(scheme) <= _SCHEME_CHARS:
        raise ValueError(f"redirect URI {uri!r}: the scheme {scheme!r} is not allowed")
    if not native:
        raise ValueError(f"redirect URI {uri!r}: only http(s) URIs are allowed unless applicationType is NATIVE "
                         "(private-use schemes such as com.example.app:/callback)")


class DcrConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the reference's example also sends "authServer"

    allowedGrantTypes: list[str] = Field(default_factory=list)
    applicationType: str = "WEB"
    clientType: Literal["PUBLIC", "CONFIDENTIAL"] = "CONFIDENTIAL"
    clientName: str = ""
    clientVersion: str = "1.0"
    expirationInterval: str | None = None
    refreshCount: str | None = None
    redirectUris: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    pkceType: Literal["NOT_ENFORCED", "ENFORCED", "USE_GLOBAL_SETTING"] = "USE_GLOBAL_SETTING"

    @field_validator("allowedGrantTypes")
    @classmethod
    def _grants(cls, value: list[str]) -> list[str]:
        for grant in value:
            if grant not in GRANT_TYPES:
                raise ValueError(f"grant type {grant!r} is not one of {list(GRANT_TYPES)}")
        return list(dict.fromkeys(value))

    @field_validator("expirationInterval", "refreshCount", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        return None if value is None else str(value)

    @field_validator("applicationType")
    @classmethod
    def _app_type(cls, value: str) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > 64:
            raise ValueError("must be a non-empty application type (WEB, NATIVE, ...)")
        return value

    @model_validator(mode="after")
    def _uris(self) -> DcrConfig:
        native = self.applicationType.strip().upper() == "NATIVE"
        for uri in self.redirectUris:
            try:
                check_redirect_uri(uri, native)
            except ValueError as exc:
                raise ValueError(f"redirectUris: {exc}") from None
        return self

    @property
    def refresh_allowed(self) -> bool:
        return "refresh_token" in self.allowedGrantTypes

    def lifetime(self) -> int | None:
        return _int_text(self.expirationInterval, "dcrConfig.expirationInterval", 1)

    def refresh_limit(self) -> int:
        """How many refreshes a grant gets: 0 without the refresh_token grant (no refresh token at all)."""
        count = max(_int_text(self.refreshCount, "dcrConfig.refreshCount", 0) or 0, 0)
        return count if self.refresh_allowed else 0

    def check_numbers(self) -> None:
        """ValueError naming the field when a number is not a bounded whole number."""
        self.lifetime()
        _int_text(self.refreshCount, "dcrConfig.refreshCount", 0)


class Strategy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    description: str = ""
    type: str
    authServerAlias: str
    audience: str = ""
    clientId: str | None = None
    dcrConfig: DcrConfig | None = None
    clientRegistration: dict[str, Any] | None = None
    sealedClientSecret: str | None = None  # stored only
    owner: str = ""
    created: int = 0

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in TYPES:
            raise ValueError(f"must be one of {list(TYPES)}")
        if value not in SUPPORTED:
            raise ValueError(f"strategy type {value!r} is not supported (supported: {', '.join(SUPPORTED)}); "
                             "Portico accepts only asymmetrically signed (RS) tokens")
        return value

    @property
    def client_id(self) -> str | None:
        registered = (self.clientRegistration or {}).get("clientId")
        return registered if isinstance(registered, str) and registered else self.clientId


def parse_strategy(data: dict[str, Any], strategy_id: str) -> Strategy:
    body = {k: v for k, v in data.items() if k not in ("id", "clientRegistration", "sealedClientSecret", "owner",
                                                      "created") and v is not None}
    for key in ("name", "type", "authServerAlias"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise ConfigError(f"field '{key}' is required and must be a non-empty string")
    try:
        strategy = Strategy.model_validate({**body, "id": strategy_id})
        if strategy.dcrConfig is not None:
            strategy.dcrConfig.check_numbers()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise ConfigError(f"field '{loc}': {first['msg']}") from None
    except ValueError as exc:
        raise ConfigError(f"field {exc}") from None
    if strategy.type in JWT_TYPES and strategy.dcrConfig is not None:
        raise ConfigError("field 'dcrConfig': a JWT strategy has no OAuth client to register")
    return strategy


def _secret_context(strategy_id: str) -> str:
    return f"strategy/{strategy_id}/clientSecret"


def registration(strategy: Strategy, client_id: str, box: SecretBox, secret: str | None,
                 server_lifetime: int) -> dict[str, Any]:
    """Fill ``clientRegistration`` (and the sealed secret) for a client registered for ``strategy``."""
    dcr = strategy.dcrConfig or DcrConfig()
    grants = set(dcr.allowedGrantTypes)
    public = dcr.clientType == "PUBLIC"
    lifetime = dcr.lifetime()
    reg = {"clientId": client_id, "name": dcr.clientName or strategy.name, "version": dcr.clientVersion,
           "type": "public" if public else "confidential",
           "tokenLifetime": server_lifetime if lifetime is None else lifetime,
           "tokenRefreshLimit": dcr.refresh_limit(), "enabled": True, "redirectUris": list(dcr.redirectUris),
           "clScopes": list(dcr.scopes), "authCodeAllowed": "authorization_code" in grants,
           "implicitAllowed": "implicit" in grants,
           "clientCredentialsAllowed": "client_credentials" in grants and not public,
           "resourceOwnerAllowed": "password" in grants, "pkceType": dcr.pkceType}
    strategy.clientRegistration = reg
    strategy.clientId = client_id
    strategy.sealedClientSecret = box.seal_text(secret, _secret_context(strategy.id)) if secret else None
    return reg


def stored_body(strategy: Strategy) -> dict[str, Any]:
    return strategy.model_dump(exclude_none=True)


def wire(strategy: Strategy, secret: str | None = None) -> dict[str, Any]:
    """The reference's shape; the client secret in full only when ``secret`` is given."""
    out = strategy.model_dump(exclude_none=True, exclude={"sealedClientSecret", "owner", "created"})
    if isinstance(out.get("clientRegistration"), dict) and strategy.sealedClientSecret:
        out["clientRegistration"]["clientSecret"] = secret or MASK
    return out


@dataclass(frozen=True)
class Client:
    """An OAuth client of the local authorization server."""

    strategy_id: str
    strategy_type: str
    client_id: str
    name: str
    public: bool
    sealed_secret: str | None
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    auth_code: bool
    client_credentials: bool
    password: bool
    lifetime: int | None  # seconds, -1 never; None: the server's accessTokenExpInterval
    refresh_limit: int  # 0: no refresh token (also when the refresh_token grant is not allowed)
    pkce: str
    enabled: bool
    refresh_allowed: bool = False

    def check_secret(self, box: SecretBox, secret: str) -> bool:
        if self.sealed_secret is None:
            return self.public
        expected = box.open_text(self.sealed_secret, _secret_context(self.strategy_id))
        return hmac.compare_digest(expected.encode(), secret.encode())


def client_of(strategy: Strategy) -> Client | None:
    reg = strategy.clientRegistration
    if not reg or not isinstance(reg.get("clientId"), str):
        return None
    refresh = strategy.dcrConfig is not None and strategy.dcrConfig.refresh_allowed
    return Client(strategy_id=strategy.id, strategy_type=strategy.type, client_id=reg["clientId"],
                  name=str(reg.get("name", "")), public=reg.get("type") == "public",
                  sealed_secret=strategy.sealedClientSecret, redirect_uris=tuple(reg.get("redirectUris", [])),
                  scopes=tuple(reg.get("clScopes", [])), auth_code=bool(reg.get("authCodeAllowed")),
                  client_credentials=bool(reg.get("clientCredentialsAllowed")),
                  password=bool(reg.get("resourceOwnerAllowed")),
                  lifetime=strategy.dcrConfig.lifetime() if strategy.dcrConfig else None,
                  refresh_limit=int(reg.get("tokenRefreshLimit", 0)) if refresh else 0,
                  pkce=str(reg.get("pkceType", "")), enabled=bool(reg.get("enabled", True)), refresh_allowed=refresh)
