"""``dynamicRouting`` (routing stage): the endpoint comes from the request.

Each ``dynamicRule`` is tried in order; the first that yields an endpoint wins, else ``routeTo``:

* ``routingConditionKey: header``: the request header ``headerName`` holds the endpoint URL (an
  absolute http(s) URL; anything else is 400 INVALID_DYNAMIC_ENDPOINT). The header is not forwarded.
* ``routingConditionKey: context``: ``dynRouteTo.dynEndpointUri`` is rendered with variables
  (``${request.headers.X}``, ``${request.query.x}``, policy variables, aliases); when every
  variable in it resolved to a non-empty value, that is the endpoint."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from portico.gateway.endpoint import Endpoint, TlsChoice
from portico.gateway.exchange import Exchange
from portico.gateway.variables import Template, getter_for
from portico.policies._endpoint import (
    Method,
    RouteTo,
    RoutingHandler,
    SslConfig,
    check_endpoint_uri,
    endpoint_choices,
    endpoint_of,
)
from portico.policies.base import PolicyConfig, Violation


class DynRouteTo(PolicyConfig):
    dynEndpointUri: str | None = Field(default=None, description="Endpoint template (context rules).")
    method: Method = Field(default="CUSTOM", description="HTTP method; CUSTOM keeps the request's.")
    connectTimeout: float | None = Field(default=None, ge=0, description="Seconds; 0 or absent: the global value.")
    readTimeout: float | None = Field(default=None, ge=0, description="Seconds; 0 or absent: the global value.")
    sslConfig: SslConfig | None = Field(default=None, description="Keystore, key alias and truststore for an https "
                                                                  "endpoint (as routeTo's).")

    @field_validator("dynEndpointUri")
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_endpoint_uri(value)


class DynamicRule(PolicyConfig):
    routingConditionKey: Literal["header", "context"] = Field(description="Where the endpoint comes from.")
    headerName: str | None = Field(default=None, description="Header holding the endpoint URL (header rules).")
    dynRouteTo: DynRouteTo = Field(default_factory=DynRouteTo, description="Method and timeouts, and the "
                                                                              "endpoint template of context rules.")

    @model_validator(mode="after")
    def _needs_source(self) -> DynamicRule:
        if self.routingConditionKey == "header" and not self.headerName:
            raise ValueError("headerName is required when routingConditionKey is header")
        if self.routingConditionKey == "context" and not self.dynRouteTo.dynEndpointUri:
            raise ValueError("dynRouteTo.dynEndpointUri is required when routingConditionKey is context")
        return self


class DynamicRoutingConfig(PolicyConfig):
    routeTo: RouteTo = Field(description="The endpoint when no rule yields one.")
    dynamicRule: list[DynamicRule] = Field(default_factory=list, description="Rules tried in order.")


class _Rule:
    def __init__(self, rule: DynamicRule) -> None:
        dyn = rule.dynRouteTo
        self.header = rule.headerName.lower().encode("latin-1") if rule.headerName else None
        self.method, self.connect, self.read = dyn.method, dyn.connectTimeout, dyn.readTimeout
        self.endpoint = Endpoint(dyn.dynEndpointUri, dyn.method, dyn.connectTimeout, dyn.readTimeout,
                                 dyn.sslConfig) if dyn.dynEndpointUri else None
        # header rules build their endpoint per request; they share one TLS choice
        self.tls_choice = TlsChoice(dyn.sslConfig, ()) if dyn.sslConfig is not None and self.header else None
        names = Template(dyn.dynEndpointUri).names if dyn.dynEndpointUri else ()
        self.getters = tuple(getter_for(n) for n in names if n != "sys:resource_path")


class DynamicRouting(RoutingHandler):
    template_key = "dynamicRouting"
    title = "Dynamic Routing"
    Config = DynamicRoutingConfig

    def __init__(self, config: DynamicRoutingConfig) -> None:
        super().__init__(config)
        self._default = endpoint_of(config.routeTo)
        self._rules = [_Rule(r) for r in config.dynamicRule]

    def tls_choices(self) -> Iterable[TlsChoice]:
        yield from endpoint_choices([self._default, *(r.endpoint for r in self._rules)])
        yield from (r.tls_choice for r in self._rules if r.tls_choice is not None)

    def run(self, ex: Exchange) -> Violation | None:
        for rule in self._rules:
            if rule.header is not None:
                value = ex.header(rule.header)
                if not value:
                    continue
                uri = value.decode("latin-1").strip()
                parts = urlsplit(uri)
                if parts.scheme not in ("http", "https") or not parts.hostname or "${" in uri:
                    return Violation(400, "INVALID_DYNAMIC_ENDPOINT",
                                     f"The {rule.header.decode()} header must hold an absolute http(s) URL")
                ex.remove_header(rule.header)
                target = Endpoint(uri, rule.method, rule.connect, rule.read, tls_choice=rule.tls_choice).route(ex)
            else:
                assert rule.endpoint is not None
                if not all(get(ex) for get in rule.getters):
                    continue
                target = rule.endpoint.route(ex)
            if isinstance(target, Violation):
                return target
            ex.route = target
            return None
        default = self._default.route(ex)
        if isinstance(default, Violation):
            return default
        ex.route = default
        return None
