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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portico.oauth.config import GRANT_TYPES, MASK, ConfigError
from portico.security.secrets import SecretBox

KIND = "strategy"
TYPES = ("JWT_RSA", "JWT_HSA", "OPENID_CONNECT_RSA", "OPENID_CONNECT_HSA", "OAUTH2", "OAUTH2_LOCAL_RSA",
         "OAUTH2_LOCAL_HSA", "COMPOSITE")
SUPPORTED = ("OAUTH2", "OAUTH2_LOCAL_RSA", "OPENID_CONNECT_RSA", "JWT_RSA")
JWT_TYPES = ("JWT_RSA",)


def _int_text(value: Any, field: str, minimum: int) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{field} must be a whole number, got {value!r}") from None
    if number < minimum and number != -1:
        raise ValueError(f"{field} must be -1 or at least {minimum}, got {number}")
    return number


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

    @field_validator("redirectUris")
    @classmethod
    def _uris(cls, value: list[str]) -> list[str]:
        for uri in value:
            parts = urlsplit(uri)
            if not parts.scheme or parts.fragment or (parts.scheme in ("http", "https") and not parts.hostname):
                raise ValueError(f"redirect URI {uri!r} must be absolute and have no fragment")
        return value

    def lifetime(self) -> int | None:
        return _int_text(self.expirationInterval, "dcrConfig.expirationInterval", 1)

    def refresh_limit(self) -> int:
        return max(_int_text(self.refreshCount, "dcrConfig.refreshCount", 0) or 0, 0)


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
    body = {k: v for k, v in data.items() if k not in ("id", "clientRegistration", "sealedClientSecret")
            and v is not None}
    for key in ("name", "type", "authServerAlias"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise ConfigError(f"field '{key}' is required and must be a non-empty string")
    try:
        strategy = Strategy.model_validate({**body, "id": strategy_id})
        if strategy.dcrConfig is not None:
            strategy.dcrConfig.lifetime()
            strategy.dcrConfig.refresh_limit()
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
    refresh_limit: int
    pkce: str
    enabled: bool

    def check_secret(self, box: SecretBox, secret: str) -> bool:
        if self.sealed_secret is None:
            return self.public
        expected = box.open_text(self.sealed_secret, _secret_context(self.strategy_id))
        return hmac.compare_digest(expected.encode(), secret.encode())


def client_of(strategy: Strategy) -> Client | None:
    reg = strategy.clientRegistration
    if not reg or not isinstance(reg.get("clientId"), str):
        return None
    return Client(strategy_id=strategy.id, strategy_type=strategy.type, client_id=reg["clientId"],
                  name=str(reg.get("name", "")), public=reg.get("type") == "public",
                  sealed_secret=strategy.sealedClientSecret, redirect_uris=tuple(reg.get("redirectUris", [])),
                  scopes=tuple(reg.get("clScopes", [])), auth_code=bool(reg.get("authCodeAllowed")),
                  client_credentials=bool(reg.get("clientCredentialsAllowed")),
                  password=bool(reg.get("resourceOwnerAllowed")),
                  lifetime=strategy.dcrConfig.lifetime() if strategy.dcrConfig else None,
                  refresh_limit=int(reg.get("tokenRefreshLimit", 0)), pkce=str(reg.get("pkceType", "")),
                  enabled=bool(reg.get("enabled", True)))
