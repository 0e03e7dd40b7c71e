"""Authorization servers (``authServerAlias``) and DCR providers (``clientMetadataMapping``).

Both are aliases (``/alias``, APIGatewayAlias.json). The built-in ``local`` server (id and name
``local``, ``authServerType`` LOCAL_IS) is Portico itself; EXTERNAL servers validate tokens issued
elsewhere: locally (issuer + JWKS URI, or a truststore certificate) and/or remotely (RFC 7662).
Secrets (introspection client secret, DCR credentials) are sealed with the master key before they
are stored; the wire shows them as ``********``, and sending ``********`` back keeps the stored one.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from portico.security.secrets import SecretBox

AUTH_SERVER = "authServerAlias"
PROVIDER = "clientMetadataMapping"
LOCAL_ID = "local"
MASK = "********"
ALGORITHMS = ("RS256", "RS384", "RS512")
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token", "password", "implicit")
DEFAULT_CLOCK_SKEW = 30
# RFC 7591 client metadata names a provider may map to its own names.
SPEC_NAMES = ("redirect_uris", "token_endpoint_auth_method", "grant_types", "application_type", "response_types",
              "client_name", "client_uri", "logo_uri", "scope", "contacts", "tos_uri", "jwks_uri", "client_id",
              "client_secret")
ENDPOINT_TYPES = ("CLIENT_REGISTRATION", "CLIENT_UPDATE", "CLIENT_DELETE", "CLIENT_READ", "SCOPE_CREATE",
                  "SCOPE_READ", "SCOPE_DELETE", "SCOPE_UPDATE")
AUTH_INFO_TYPES = ("NONE", "BASIC", "TOKEN", "REFRESH_TOKEN", "CLIENT_CREDENTIALS")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
INT32_MAX = 2_147_483_647  # the widest integer column a setting ends up in (PostgreSQL integer)
PUBLIC_URL_ENV = "PORTICO_PUBLIC_URL"
DEFAULT_ISSUER = "Portico"
DEFAULT_REFRESH_LIFETIME = 30 * 24 * 3600  # seconds


class ConfigError(ValueError):
    """A body that does not fit; the message names the field."""


def check_url(value: str, field: str) -> str:
    """An absolute http(s) URL that an HTTP client can use; ValueError naming ``field`` otherwise."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError(f"{field} must be an absolute http(s) URL, got {value!r}")
    return value


def _url(value: str | None, field: str) -> str | None:
    if value in (None, ""):
        return None
    assert value is not None
    return check_url(value, field)


def _whole(value: Any) -> Any:
    # pydantic takes true/false for 1/0; a number of seconds given as a boolean is a mistake
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scope(_Model):
    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SCOPE.match(value):
            raise ValueError(f"scope name {value!r} must be non-empty and contain no spaces, quotes or backslashes")
        return value


class TokenGeneratorConfig(_Model):
    expiry: WholeNumber = Field(default=60, ge=1, le=5_256_000)  # JWT lifetime, minutes
    algorithm: Literal["RS256", "RS384", "RS512"] = "RS256"
    audience: str = ""
    accessTokenExpInterval: WholeNumber = 3600  # seconds; -1: never expires
    authCodeExpInterval: WholeNumber = Field(default=600, ge=1, le=INT32_MAX)  # seconds
    # Portico's: how long a refresh token may be used after it was issued (or last rotated); -1: no limit
    refreshTokenExpInterval: WholeNumber = DEFAULT_REFRESH_LIFETIME
    enforcePKCE: bool = False

    @field_validator("accessTokenExpInterval", "refreshTokenExpInterval")
    @classmethod
    def _access(cls, value: int) -> int:
        if value != -1 and not 1 <= value <= INT32_MAX:
            raise ValueError(f"must be -1 (never expires) or between 1 and {INT32_MAX} seconds")
        return value


class LocalIntrospectionConfig(_Model):
    issuer: str = ""
    jwksuri: str | None = None
    trustStoreAlias: str | None = None
    certificateAlias: str | None = None
    clockSkew: WholeNumber = Field(default=DEFAULT_CLOCK_SKEW, ge=0, le=3600)
    useLocalClockSkew: bool = True

    @field_validator("jwksuri")
    @classmethod
    def _jwks(cls, value: str | None) -> str | None:
        return _url(value, "jwksuri")


class RemoteIntrospectionConfig(_Model):
    introspectionEndpoint: str | None = None
    clientId: str = ""
    clientSecret: str | None = None  # sealed at rest
    user: str = ""

    @field_validator("introspectionEndpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return _url(value, "introspectionEndpoint")


class SSLConfig(_Model):
    keyStoreAlias: str | None = None
    keyAlias: str | None = None
    trustStoreAlias: str | None = None


class Metadata(_Model):
    accessTokenURL: str | None = None
    authorizeURL: str | None = None
    refreshTokenURL: str | None = None


class AuthInfo(_Model):
    type: Literal["NONE", "BASIC", "TOKEN", "REFRESH_TOKEN", "CLIENT_CREDENTIALS"] = "NONE"
    username: str = ""
    password: str | None = None  # sealed
    tokenType: str = "Bearer"
    token: str | None = None  # sealed
    clientId: str = ""
    clientSecret: str | None = None  # sealed
    scope: str = ""


class RegistrationEndpoint(_Model):
    endpoint: str
    headers: dict[str, str] = Field(default_factory=dict)  # values sealed at rest (they often hold API keys)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _url(value, "endpoint") or ""

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not an HTTP field name")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} must not contain line breaks")
        return value


class DcrEndpoint(_Model):
    clientRegistrationEndpoint: RegistrationEndpoint
    authInfo: AuthInfo = Field(default_factory=AuthInfo)


class AuthServer(_Model):
    """An ``authServerAlias``: ``local`` (LOCAL_IS) or an EXTERNAL authorization server."""

    id: str
    name: str
    type: Literal["authServerAlias"] = "authServerAlias"
    description: str = ""
    owner: str = ""
    stage: str = ""
    authServerType: Literal["LOCAL_IS", "EXTERNAL"] = "EXTERNAL"
    discoveryURL: str | None = None
    localIntrospectionConfig: LocalIntrospectionConfig = Field(default_factory=LocalIntrospectionConfig)
    remoteIntrospectionConfig: RemoteIntrospectionConfig = Field(default_factory=RemoteIntrospectionConfig)
    tokenGeneratorConfig: TokenGeneratorConfig = Field(default_factory=TokenGeneratorConfig)
    sslConfig: SSLConfig = Field(default_factory=SSLConfig)
    metadata: Metadata = Field(default_factory=Metadata)
    scopes: list[Scope] = Field(default_factory=list)
    supportedGrantTypes: list[str] = Field(default_factory=list)
    providerName: str | None = None
    dcrEndpoint: DcrEndpoint | None = None
    # Portico's (EXTERNAL): the audience tokens must name (``aud``) to be accepted; empty: not checked.
    # The local server's is tokenGeneratorConfig.audience.
    audience: str = ""

    @field_validator("discoveryURL")
    @classmethod
    def _discovery(cls, value: str | None) -> str | None:
        return _url(value, "discoveryURL")

    @field_validator("supportedGrantTypes")
    @classmethod
    def _grants(cls, value: list[str]) -> list[str]:
        for grant in value:
            if grant not in GRANT_TYPES:
                raise ValueError(f"grant type {grant!r} is not one of {list(GRANT_TYPES)}")
        return list(dict.fromkeys(value))

    @property
    def is_local(self) -> bool:
        return self.authServerType == "LOCAL_IS"

    @property
    def clock_skew(self) -> int:
        return self.localIntrospectionConfig.clockSkew


class ExtendedValue(_Model):
    endpointType: Literal["CLIENT_REGISTRATION", "CLIENT_UPDATE", "CLIENT_DELETE", "CLIENT_READ", "SCOPE_CREATE",
                          "SCOPE_READ", "SCOPE_DELETE", "SCOPE_UPDATE"]
    key: str = Field(min_length=1)
    value: str = ""


class Provider(_Model):
    """A ``clientMetadataMapping`` alias: how to register clients with one vendor's server (RFC 7591
    names mapped to the vendor's), extra request parameters and application types."""

    id: str
    name: str
    type: Literal["clientMetadataMapping"] = "clientMetadataMapping"
    description: str = ""
    owner: str = ""
    stage: str = ""
    providerName: str = ""
    implNames: dict[str, str] = Field(default_factory=dict)
    extendedValuesV2: list[ExtendedValue] = Field(default_factory=list)
    supportedApplicationTypes: list[str] = Field(default_factory=lambda: ["web", "native"])
    generateCredentials: bool = False

    @field_validator("implNames")
    @classmethod
    def _impl(cls, value: dict[str, str]) -> dict[str, str]:
        for spec, impl in value.items():
            if spec not in SPEC_NAMES:
                raise ValueError(f"specification name {spec!r} is not an RFC 7591 client metadata name "
                                 f"({', '.join(SPEC_NAMES)})")
            if not isinstance(impl, str) or not impl.strip():
                raise ValueError(f"the implementation name of {spec!r} must be a non-empty string")
        return value

    @field_validator("supportedApplicationTypes")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        if any(not isinstance(v, str) or not v.strip() for v in value):
            raise ValueError("application types must be non-empty strings")
        return list(dict.fromkeys(["web", "native", *value]))

    def impl(self, spec_name: str) -> str:
        return self.implNames.get(spec_name, spec_name)


def default_issuer() -> str:
    """The issuer ``local`` starts with: the node's public URL (``PORTICO_PUBLIC_URL``) when set, as
    OpenID clients want an URL that serves the discovery document; else "Portico"."""
    public = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    if public:
        try:
            return check_url(public, PUBLIC_URL_ENV)
        except ValueError:
            pass  # a bad variable must not stop the start; the name is kept
    return DEFAULT_ISSUER


def default_local() -> AuthServer:
    return AuthServer(id=LOCAL_ID, name=LOCAL_ID, authServerType="LOCAL_IS",
                      description="Portico as the authorization server (OAuth2, JWT, OpenID Connect)",
                      localIntrospectionConfig=LocalIntrospectionConfig(issuer=default_issuer()),
                      supportedGrantTypes=["authorization_code", "client_credentials", "refresh_token"])


# The providers the guide names as shipped; each is seeded again at start when missing, so deleting
# one restores its shipped settings at the next start.
PRESETS: tuple[Provider, ...] = (
    Provider(id="PingFederate", name="PingFederate", providerName="PingFederate", generateCredentials=True,
             description="PingFederate client management API",
             implNames={"client_id": "clientId", "client_secret": "secret", "redirect_uris": "redirectUris",
                        "grant_types": "grantTypes", "client_name": "name", "logo_uri": "logoUrl",
                        "scope": "restrictedScopes"},
             extendedValuesV2=[ExtendedValue(endpointType="CLIENT_REGISTRATION", key="forceSecretChange",
                                             value="true")]),
    Provider(id="OKTA", name="OKTA", providerName="OKTA", description="Okta dynamic client registration (RFC 7591)",
             supportedApplicationTypes=["web", "native", "browser", "service"]),
)


def _first_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "body"
    message = "is not a known field" if first["type"] == "extra_forbidden" else first["msg"]
    return ConfigError(f"field '{prefix}{loc}': {message}")


def _secret_value(value: Any, field: str) -> str | None:
    """A secret given as a string or as the reference's GatewaySecret object ``{"secret": ...}``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("secret", value.get("value"))
        if inner is None or isinstance(inner, str):
            return inner
    raise ConfigError(f"field '{field}' must be a string or an object with a string 'secret'")


_SECRETS = (("remoteIntrospectionConfig", "clientSecret"),)
_AUTH_SECRETS = ("password", "token", "clientSecret")


def _context(alias_id: str, what: str) -> str:
    return f"authServerAlias/{alias_id}/{what}"


def parse_auth_server(data: dict[str, Any], alias_id: str, box: SecretBox, current: AuthServer | None) -> AuthServer:
    """Validate a wire body into an :class:`AuthServer` with its secrets sealed. ``current`` is the
    stored one (None on create): a secret sent as ``********`` or left out keeps its stored value."""
    body = {k: v for k, v in data.items() if k != "id" and v is not None}
    local_cfg = body.get("localIntrospectionConfig")
    if isinstance(local_cfg, dict) and "description" in local_cfg:
        # the reference's schema calls the clock skew "description" (an integer)
        local_cfg = dict(local_cfg)
        skew = local_cfg.pop("description")
        if isinstance(skew, str) and skew.strip().isdigit():
            skew = int(skew.strip())
        if not isinstance(skew, int) or isinstance(skew, bool):
            raise ConfigError("field 'localIntrospectionConfig.description' (the clock skew) must be a whole "
                              "number of seconds")
        local_cfg.setdefault("clockSkew", skew)
        body["localIntrospectionConfig"] = local_cfg
    remote = body.get("remoteIntrospectionConfig")
    if isinstance(remote, dict) and "clientSecret" in remote:
        body["remoteIntrospectionConfig"] = {**remote, "clientSecret": _secret_value(
            remote["clientSecret"], "remoteIntrospectionConfig.clientSecret")}
    dcr = body.get("dcrEndpoint")
    if isinstance(dcr, dict) and isinstance(dcr.get("authInfo"), dict):
        info = dict(dcr["authInfo"])
        for key in _AUTH_SECRETS:
            if key in info:
                info[key] = _secret_value(info[key], f"dcrEndpoint.authInfo.{key}")
        body["dcrEndpoint"] = {**dcr, "authInfo": info}
    try:
        server = AuthServer.model_validate({**body, "id": alias_id})
    except ValidationError as exc:
        raise _first_error(exc) from None
    _seal(server, box, current)
    _check(server)
    return server


def _keep_or_seal(value: str | None, stored: str | None, box: SecretBox, context: str) -> str | None:
    if value is None or value == MASK:
        return stored
    if value == "":
        return None
    return box.seal_text(value, context)


def _seal(server: AuthServer, box: SecretBox, current: AuthServer | None) -> None:
    remote = server.remoteIntrospectionConfig
    remote.clientSecret = _keep_or_seal(remote.clientSecret,
                                        current.remoteIntrospectionConfig.clientSecret if current else None,
                                        box, _context(server.id, "introspectionSecret"))
    if server.dcrEndpoint is not None:
        info = server.dcrEndpoint.authInfo
        old = current.dcrEndpoint.authInfo if current and current.dcrEndpoint else None
        for key in _AUTH_SECRETS:
            setattr(info, key, _keep_or_seal(getattr(info, key), getattr(old, key) if old else None, box,
                                             _context(server.id, f"dcr.{key}")))
        endpoint = server.dcrEndpoint.clientRegistrationEndpoint
        old_headers = current.dcrEndpoint.clientRegistrationEndpoint.headers \
            if current and current.dcrEndpoint else {}
        sealed: dict[str, str] = {}
        for name, value in endpoint.headers.items():
            if value == MASK and name not in old_headers:
                raise ConfigError(f"field 'dcrEndpoint.clientRegistrationEndpoint.headers.{name}': "
                                  f"{MASK} keeps a stored value, but header {name!r} has none")
            kept = _keep_or_seal(value, old_headers.get(name), box, _context(server.id, f"dcr.header.{name}"))
            sealed[name] = kept or ""
        endpoint.headers = sealed


def dcr_headers(box: SecretBox, server: AuthServer) -> dict[str, str]:
    """The registration endpoint's headers in plain text (sealed at rest)."""
    if server.dcrEndpoint is None:
        return {}
    return {name: open_secret(box, server, f"dcr.header.{name}", value) or ""
            for name, value in server.dcrEndpoint.clientRegistrationEndpoint.headers.items()}


def open_secret(box: SecretBox, server: AuthServer, what: str, sealed: str | None) -> str | None:
    """The plain value of a sealed secret of ``server`` (``what``: introspectionSecret, dcr.password, ...)."""
    return box.open_text(sealed, _context(server.id, what)) if sealed else None


def _check(server: AuthServer) -> None:
    names = [s.name for s in server.scopes]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"field 'scopes': scope {dup!r} is listed twice")
    ssl = server.sslConfig
    if bool(ssl.keyStoreAlias) != bool(ssl.keyAlias):
        raise ConfigError("field 'sslConfig': keyStoreAlias and keyAlias go together (give both or neither)")
    local = server.localIntrospectionConfig
    if server.is_local:
        if server.id != LOCAL_ID or server.name != LOCAL_ID:
            raise ConfigError("field 'authServerType': LOCAL_IS is the built-in server 'local'; "
                              "other authorization servers are EXTERNAL")
        if not local.issuer.strip():
            raise ConfigError("field 'localIntrospectionConfig.issuer': the token issuer must not be empty")
        if server.audience:
            raise ConfigError("field 'audience': the local server's audience is tokenGeneratorConfig.audience")
        return
    if server.id == LOCAL_ID or server.name == LOCAL_ID:
        raise ConfigError("field 'name': 'local' is the built-in authorization server")
    if bool(local.trustStoreAlias) != bool(local.certificateAlias):
        raise ConfigError("field 'localIntrospectionConfig': trustStoreAlias and certificateAlias go together")
    remote = server.remoteIntrospectionConfig
    if remote.introspectionEndpoint and not remote.clientId:
        raise ConfigError("field 'remoteIntrospectionConfig.clientId' is required with an introspectionEndpoint")
    has_local = bool(local.jwksuri or local.certificateAlias)
    if not has_local and not remote.introspectionEndpoint:
        raise ConfigError("an EXTERNAL authorization server needs a way to validate tokens: "
                          "localIntrospectionConfig (issuer with jwksuri, or trustStoreAlias and certificateAlias) "
                          "or remoteIntrospectionConfig.introspectionEndpoint (or a discoveryURL that provides them)")
    if has_local and not local.issuer.strip():
        raise ConfigError("field 'localIntrospectionConfig.issuer' is required for local introspection")
    if server.dcrEndpoint is not None and not server.providerName:
        raise ConfigError("field 'providerName' is required with dcrEndpoint (the provider whose field "
                          "mapping registers clients)")


def parse_provider(data: dict[str, Any], alias_id: str) -> Provider:
    body = {k: v for k, v in data.items() if k != "id" and v is not None}
    try:
        provider = Provider.model_validate({**body, "id": alias_id})
    except ValidationError as exc:
        raise _first_error(exc) from None
    if not provider.providerName:
        provider.providerName = provider.name
    return provider


def auth_server_wire(server: AuthServer) -> dict[str, Any]:
    """The reference's shape, secrets masked."""
    out = server.model_dump(exclude_none=True)
    remote = out.get("remoteIntrospectionConfig", {})
    if remote.get("clientSecret"):
        remote["clientSecret"] = {"secret": MASK}
    local = out.get("localIntrospectionConfig", {})
    if "clockSkew" in local:
        local["description"] = local["clockSkew"]  # the reference's name for it
    info = (out.get("dcrEndpoint") or {}).get("authInfo", {})
    for key in _AUTH_SECRETS:
        if info.get(key):
            info[key] = {"secret": MASK}
    endpoint = (out.get("dcrEndpoint") or {}).get("clientRegistrationEndpoint", {})
    if endpoint.get("headers"):
        endpoint["headers"] = {name: MASK for name in endpoint["headers"]}
    if server.is_local:
        for key in ("remoteIntrospectionConfig", "dcrEndpoint", "discoveryURL", "providerName", "audience"):
            out.pop(key, None)
    else:
        out.pop("tokenGeneratorConfig", None)
    return out


def provider_wire(provider: Provider) -> dict[str, Any]:
    return provider.model_dump(exclude_none=True)
