"""Routing endpoints shared by the routing policies: config model and per-request resolution.

An endpoint URI may hold variables (``${request.headers.X}``, ``${sys:resource_path}``, ...) and
aliases: ``${MyAlias}`` is replaced by a simple alias's value or an endpoint alias's
``endPointURI`` (the snapshot part ``portico.gateway.parts.aliases`` indexes both). URIs without
variables other than ``${sys:resource_path}`` take the fast path: split once, joined per request.

Timeout precedence (guide, ``pg.endpoint.connectionTimeout``/``readTimeout``): an endpoint
alias's non-zero timeout, else the routing action's non-zero timeout, else the global setting.

TLS to an https endpoint (issue 5): the endpoint's own ``sslConfig`` (keystore + key alias for
two-way TLS, truststore to validate the native service) comes first, field by field; what it leaves
out comes from the endpoint alias's stores, else the outbound defaults of ``/configurations/keystore``.
The stores are checked when the action is written (:meth:`RoutingHandler.check_stored`) and the
context is built once per snapshot by ``gateway/parts/tls.py`` into the endpoint's :class:`TlsChoice`;
an endpoint without ``sslConfig`` pays nothing for it."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from portico.gateway.exchange import Exchange, RouteTarget
from portico.gateway.tls import OUTBOUND, TLS_FAILURE
from portico.gateway.variables import SYSTEM_NAMES, Template
from portico.policies.base import ConfigError, PolicyConfig, PolicyHandler, Violation
from portico.security.keystore.records import KEYSTORE, TRUSTSTORE, store_problem

if TYPE_CHECKING:
    from portico.store import StoreTransaction

RESOURCE_PATH = "${sys:resource_path}"
ENDPOINT_ALIASES = "endpoint_aliases"  # snap.extras key: alias name -> parts.aliases.EndpointAliasView
LB_FAILOVER_ON_FAULT = "lb_failover_on_fault"  # snap.extras key, filled by parts.routing
Method = Literal["CUSTOM", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_VAR = re.compile(r"\$\{([^}]+)\}")
_SLASHES = re.compile(r"/{2,}")


def check_endpoint_uri(value: str) -> str:
    """Validate an endpoint URI at configuration time; variables are allowed anywhere.

    A URI that starts with a variable (an alias) is checked per request instead."""
    if value.startswith("${"):
        return value
    probe = _VAR.sub("0", value)  # "0" fits a host, a port and a path
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"has an invalid port: {value!r}") from None
    return value


def alias_names(uri: str) -> tuple[str, ...]:
    """The ``${name}`` references that are neither system variables nor request/path variables."""
    names = (m.group(1).strip() for m in _VAR.finditer(uri))
    return tuple(n for n in names if n not in SYSTEM_NAMES and "." not in n and ":" not in n)


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


class TlsChoice:
    """What an endpoint's ``sslConfig`` became in this snapshot: ``context`` is set by the snapshot
    part ``gateway/parts/tls.py`` (a context, or why none can be built); None until then, and then
    the endpoint alias or the outbound defaults apply."""

    __slots__ = ("aliases", "config", "context")

    def __init__(self, config: SslConfig, aliases: tuple[str, ...]) -> None:
        self.config = config
        self.aliases = aliases
        self.context: ssl.SSLContext | str | None = None


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


class Endpoint:
    """A compiled endpoint: ``route(ex)`` builds the :class:`RouteTarget` or a violation."""

    __slots__ = (
        "_aliases", "_fast", "_fixed_query", "_host", "_method", "_netloc", "_port", "_prefix", "_scheme",
        "_suffix", "_template", "_uses_resource_path", "connect_timeout", "read_timeout", "tls_choice", "uri",
    )

    def __init__(self, uri: str, method: str = "CUSTOM", connect_timeout: float | None = None,
                 read_timeout: float | None = None, ssl_config: SslConfig | None = None,
                 tls_choice: TlsChoice | None = None) -> None:
        self.uri = uri
        self._method = method
        self.connect_timeout = connect_timeout or 0.0
        self.read_timeout = read_timeout or 0.0
        self._uses_resource_path = RESOURCE_PATH in uri
        self._aliases = alias_names(uri)
        self.tls_choice = tls_choice or (TlsChoice(ssl_config, self._aliases) if ssl_config is not None else None)
        self._fast = "${" not in uri.replace(RESOURCE_PATH, "")
        self._template = None if self._fast else Template(uri, self._escape)
        self._suffix = ""
        if self._fast:
            head, _, tail = uri.partition(RESOURCE_PATH)
            parts = urlsplit(head if self._uses_resource_path else uri)
            self._scheme = parts.scheme
            self._host = parts.hostname or ""
            self._port = parts.port or (443 if parts.scheme == "https" else 80)
            self._netloc = parts.netloc
            self._prefix = parts.path
            self._suffix = tail
            self._fixed_query = parts.query

    def _escape(self, name: str, value: str) -> str:
        """Aliases supply whole endpoints and ``${sys:resource_path}`` is the request's own (already
        encoded) path; every other value is data and is percent-encoded, so it cannot add path
        segments, a query or bytes that are not allowed in a request line."""
        if name == "sys:resource_path" or name in self._aliases:
            return value
        return quote(value, safe="")

    @classmethod
    def of(cls, cfg: RouteTo) -> Endpoint:
        return cls(cfg.endpointUri, cfg.method, cfg.connectTimeout, cfg.readTimeout, cfg.sslConfig)

    def route(self, ex: Exchange) -> RouteTarget | Violation:
        if self._fast:
            return self._target(ex, self._scheme, self._host, self._port, self._netloc, self._joined_path(ex),
                                self._fixed_query, self._uses_resource_path, self._aliased_timeouts(ex))
        return self._render(ex)

    def _joined_path(self, ex: Exchange) -> str:
        if not self._uses_resource_path:
            return self._prefix
        prefix, resource = self._prefix, ex.resource_path
        if prefix.endswith("/") and resource.startswith("/"):
            resource = resource[1:]
        elif not prefix.endswith("/") and not resource.startswith("/") and resource:
            resource = "/" + resource
        return prefix + resource + self._suffix

    def _render(self, ex: Exchange) -> RouteTarget | Violation:
        for name in self._aliases:
            if not _defined(ex, name):
                message = f"The routing endpoint {self.uri!r} refers to ${{{name}}}, which is not a defined alias"
                return Violation(500, "ALIAS_NOT_FOUND", message)
        assert self._template is not None
        rendered = self._template.render(ex)
        parts = urlsplit(rendered)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            return Violation(502, "INVALID_ENDPOINT", f"The routing endpoint resolved to {rendered!r}, "
                                                      "which is not an absolute http(s) URL")
        path = _SLASHES.sub("/", parts.path)
        return self._target(ex, parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80),
                            parts.netloc, path, parts.query, self._uses_resource_path, self._aliased_timeouts(ex))

    def _aliased_timeouts(self, ex: Exchange) -> tuple[float, float]:
        connect, read = self.connect_timeout, self.read_timeout
        if self._aliases:
            index = ex.snapshot.extras.get(ENDPOINT_ALIASES) or {}
            for name in self._aliases:
                alias = index.get(name)
                if alias is not None:
                    connect = alias.connection_timeout or connect
                    read = alias.read_timeout or read
                    break
        return connect, read

    def _target(self, ex: Exchange, scheme: str, host: str, port: int, netloc: str, path: str, fixed_query: str,
                with_query: bool, timeouts: tuple[float, float]) -> RouteTarget | Violation:
        settings = ex.snapshot.settings
        context: ssl.SSLContext | None = None
        if scheme == "https":  # the sslConfig's stores, else the alias's own, else the outbound defaults
            choice = self.tls_choice
            tls: ssl.SSLContext | str | None = choice.context if choice is not None else None
            if tls is None:
                outbound = ex.snapshot.extras.get(OUTBOUND)
                tls = outbound.context_for(self._aliases) if outbound is not None else None
            if isinstance(tls, str):
                return Violation(502, TLS_FAILURE, f"The native service {netloc} cannot be called over TLS: {tls}")
            context = tls
        query = ex.query if with_query or settings.forward_query_params else ""
        if fixed_query:
            query = f"{fixed_query}&{query}" if query else fixed_query
        target = (path or "/") + ("?" + query if query else "")
        return RouteTarget(
            scheme=scheme,
            host=host,
            port=port,
            target=target,
            method=ex.method if self._method == "CUSTOM" else self._method,
            connect_timeout=timeouts[0] or settings.connect_timeout,
            read_timeout=timeouts[1] or settings.read_timeout,
            url=f"{scheme}://{netloc}{target}",
            tls=context,
        )


def _defined(ex: Exchange, name: str) -> bool:
    if ex.variables and name in ex.variables:
        return True
    return name in ex.snapshot.simple_aliases
