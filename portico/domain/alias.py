"""Aliases: named values referenced as ``${name}`` in policy parameters (APIGatewayAlias.json).

Portico stores the ``simple`` (``value``) and ``endpoint`` (``endPointURI`` + timeouts) types;
the other types of the reference are refused as not supported yet."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

ALL_TYPES = (
    "simple", "endpoint", "httpTransportSecurityAlias", "soapMessageSecurityAlias", "samlIssuerAlias",
    "authServerAlias", "webmethodsAlias", "transformationAlias", "serviceRegistryAlias", "clientMetadataMapping",
    "awsConfigurationAlias", "isConfigurationAlias",
)
SUPPORTED_TYPES = ("simple", "endpoint", "authServerAlias", "clientMetadataMapping")  # the last two: admin/auth_servers


class AliasError(ValueError):
    """An alias body that does not fit; the message names the field."""


class Alias(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    type: Literal["simple", "endpoint"]
    description: str = ""
    owner: str = ""
    stage: str = ""
    # simple
    value: str | None = None
    # endpoint
    endPointURI: str | None = None
    connectionTimeout: int = 0
    readTimeout: int = 0
    optimizationTechnique: Literal["None", "MTOM", "SwA"] = "None"
    passSecurityHeaders: bool = False
    keystoreAlias: str | None = None
    keyAlias: str | None = None
    truststoreAlias: str | None = None

    @field_validator("connectionTimeout", "readTimeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("must be a non-negative whole number of seconds")
        return value

    @field_validator("endPointURI")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value


SIMPLE_ONLY = ("value",)
ENDPOINT_ONLY = ("endPointURI", "connectionTimeout", "readTimeout", "optimizationTechnique", "passSecurityHeaders",
                 "keystoreAlias", "keyAlias", "truststoreAlias")


def parse_alias(data: dict[str, Any], alias_id: str) -> Alias:
    """Validate a wire body into an :class:`Alias`; AliasError names the offending field."""
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in ALL_TYPES:
        raise AliasError(f"field 'type' must be one of {list(ALL_TYPES)}, got {kind!r}")
    if kind not in SUPPORTED_TYPES:
        raise AliasError(f"field 'type': alias type {kind!r} is not supported yet "
                         f"(supported: {', '.join(SUPPORTED_TYPES)})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AliasError("field 'name' is required and must be a non-empty string")
    if "}" in name or "${" in name:
        raise AliasError("field 'name' must not contain '${' or '}'")
    foreign = ENDPOINT_ONLY if kind == "simple" else SIMPLE_ONLY
    body = {k: v for k, v in data.items() if k not in ("id", *foreign) and v is not None}
    if kind == "simple" and not isinstance(data.get("value"), str):
        raise AliasError("field 'value' is required for a simple alias and must be a string")
    if kind == "endpoint" and not isinstance(data.get("endPointURI"), str):
        raise AliasError("field 'endPointURI' is required for an endpoint alias and must be a string")
    try:
        return Alias.model_validate({**body, "id": alias_id})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        message = "is not a known alias field" if first["type"] == "extra_forbidden" else first["msg"]
        raise AliasError(f"field '{loc}': {message}") from None

