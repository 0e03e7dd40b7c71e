"""Routing endpoints shared by the routing policies: config models (``RouteTo``, ``SslConfig``),
their checks on write, and :func:`endpoint_of`. The per-request part, :class:`Endpoint` (variables,
aliases, the fast path), lives in the compiled :mod:`portico.gateway.endpoint`.

Timeout precedence (guide, ``pg.endpoint.connectionTimeout``/``readTimeout``): an endpoint
alias's non-zero timeout, else the routing action's non-zero timeout, else the global setting.

TLS to an https endpoint (issue 5): the endpoint's own ``sslConfig`` (keystore + key alias for
two-way TLS, truststore to validate the native service) comes first, field by field; what it leaves
out comes from the endpoint alias's stores, else the outbound defaults of ``/configurations/keystore``.
The stores are checked when the action is written (:meth:`RoutingHandler.check_stored`) and the
context is built once per snapshot by ``gateway/parts/tls.py`` into the endpoint's :class:`TlsChoice`;
an endpoint without ``sslConfig`` pays nothing for it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from portico.gateway.endpoint import VAR, Endpoint, TlsChoice
from portico.policies.base import ConfigError, PolicyConfig, PolicyHandler
from portico.security.keystore.records import KEYSTORE, TRUSTSTORE, store_problem

if TYPE_CHECKING:
    from portico.store import StoreTransaction

LB_FAILOVER_ON_FAULT = "lb_failover_on_fault"  # snap.extras key, filled by parts.routing
Method = Literal["CUSTOM", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def check_endpoint_uri(value: str) -> str:
    """Validate an endpoint URI at configuration time; variables are allowed anywhere.

    A URI that starts with a variable (an alias) is checked per request instead."""
    if value.startswith("${"):
        return value
    probe = VAR.sub("0", value)  # "0" fits a host, a port and a path
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"has an invalid port: {value!r}") from None
    return value


class SslConfig(PolicyConfig):
    """A routing endpoint's own TLS stores (the reference's ``sslConfig``)."""

    keyStoreAlias: str | None = Field(
        default=None, description="Keystore holding the key presented to the native service (two-way TLS).")
    keyAlias: str | None = Field(default=None, description="Key alias in keyStoreAlias (two-way TLS).")
    trustStoreAlias: str | None = Field(
        default=None, validation_alias=AliasChoices("trustStoreAlias", "truststoreAlias"),
        description="Truststore the native service's certificate is validated against.")

    @field_validator("keyStoreAlias", "keyAlias", "trustStoreAlias", mode="after")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @model_validator(mode="after")
    def _key_pair(self) -> SslConfig:
        if self.keyAlias and not self.keyStoreAlias:
            raise ValueError("keyAlias needs keyStoreAlias")
        if self.keyStoreAlias and not self.keyAlias:
            raise ValueError("keyStoreAlias needs keyAlias (the key to present)")
        return self


def ssl_configs(model: BaseModel, path: str = "") -> Iterator[tuple[str, SslConfig]]:
    """Every ``sslConfig`` in a validated routing config, with its parameter path."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = f"{path}.{name}" if path else name
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, SslConfig):
                yield here, item
            elif isinstance(item, BaseModel):
                yield from ssl_configs(item, here)


async def check_ssl_stores(template_key: str, config: BaseModel, tx: StoreTransaction) -> None:
    """Each store an ``sslConfig`` names exists and is loaded, and its key alias has a working
    password; ConfigError names the parameter."""
    for path, ssl_config in ssl_configs(config):
        checks = ((f"{path}.keyStoreAlias", KEYSTORE, ssl_config.keyStoreAlias, None),
                  (f"{path}.keyAlias", KEYSTORE, ssl_config.keyStoreAlias, ssl_config.keyAlias),
                  (f"{path}.trustStoreAlias", TRUSTSTORE, ssl_config.trustStoreAlias, None))
        for where, kind, name, key_alias in checks:
            if not name or (where.endswith(".keyAlias") and not key_alias):
                continue
            problem = await store_problem(tx, kind, name, key_alias)
            if problem:
                raise ConfigError(f"{template_key}: parameter '{where}': {problem}")


class RoutingHandler(PolicyHandler):
    """Base of the routing policies: their endpoints' TLS choices, and the store checks on write."""

    stage = "routing"

    def tls_choices(self) -> Iterable[TlsChoice]:
        """The :class:`TlsChoice` of every endpoint with an ``sslConfig`` (bound once per snapshot)."""
        return ()

    @classmethod
    async def check_stored(cls, config: PolicyConfig, tx: StoreTransaction) -> None:
        await check_ssl_stores(cls.template_key, config, tx)


def endpoint_choices(endpoints: Iterable[Endpoint | None]) -> Iterator[TlsChoice]:
    return (e.tls_choice for e in endpoints if e is not None and e.tls_choice is not None)


class RouteTo(PolicyConfig):
    """One routing endpoint (the reference's ``routeTo`` group and the top-level routing fields)."""

    endpointUri: str = Field(description="Native endpoint URL; may contain variables and ${aliasName}.")
    method: Method = Field(default="CUSTOM", description="HTTP method for the endpoint; CUSTOM keeps the request's.")
    connectTimeout: float | None = Field(
        default=None, ge=0, description="Seconds; 0 or absent falls back to pg.endpoint.connectionTimeout."
    )
    readTimeout: float | None = Field(
        default=None, ge=0, description="Seconds; 0 or absent falls back to pg.endpoint.readTimeout."
    )
    sslConfig: SslConfig | None = Field(
        default=None, description="Keystore, key alias and truststore for an https endpoint; they take precedence "
                                  "over the endpoint alias's and the outbound defaults."
    )

    @field_validator("endpointUri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        return check_endpoint_uri(value)


def endpoint_of(cfg: RouteTo) -> Endpoint:
    return Endpoint(cfg.endpointUri, cfg.method, cfg.connectTimeout, cfg.readTimeout, cfg.sslConfig)
