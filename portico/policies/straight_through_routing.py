"""``straightThroughRouting`` (routing stage): send the request to one endpoint.

The endpoint URI may contain ``${sys:resource_path}``, the part of the
request path after ``/gateway/{api}/{version}``. The URI is split once, at
configuration time; per request only the resource path and query are joined."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from portico.gateway.exchange import Exchange, RouteTarget
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

RESOURCE_PATH = "${sys:resource_path}"
_METHODS = ("CUSTOM", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")


class StraightThroughRoutingConfig(PolicyConfig):
    endpointUri: str = Field(description="Native endpoint URL; may contain ${sys:resource_path}.")
    method: Literal["CUSTOM", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] = Field(
        default="CUSTOM", description="HTTP method to call the endpoint with; CUSTOM keeps the request's."
    )
    connectTimeout: float | None = Field(
        default=None, ge=0, description="Seconds; overrides pg.endpoint.connectionTimeout."
    )
    readTimeout: float | None = Field(default=None, ge=0, description="Seconds; overrides pg.endpoint.readTimeout.")
    sslConfig: dict[str, list[str]] | list[dict[str, list[str]]] | None = Field(
        default=None, description="Keystore and truststore aliases for HTTPS endpoints."
    )

    @field_validator("endpointUri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        probe = value.replace(RESOURCE_PATH, "x")
        if "${" in probe:
            raise ValueError("variables other than ${sys:resource_path} are not supported in endpointUri yet")
        parts = urlsplit(probe)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError(f"has an invalid port: {value!r}") from None
        return value


class StraightThroughRouting(PolicyHandler):
    template_key = "straightThroughRouting"
    stage = "routing"
    title = "Straight Through Routing"
    Config = StraightThroughRoutingConfig

    def __init__(self, config: StraightThroughRoutingConfig) -> None:
        super().__init__(config)
        uri = config.endpointUri
        self._uses_resource_path = RESOURCE_PATH in uri
        head, _, tail = uri.partition(RESOURCE_PATH)
        parts = urlsplit(head if self._uses_resource_path else uri)
        self._scheme = parts.scheme
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._netloc = parts.netloc
        self._prefix = parts.path  # path before the resource path
        self._suffix = tail
        self._fixed_query = parts.query
        self._method = config.method

    def run(self, ex: Exchange) -> Violation | None:
        settings = ex.snapshot.settings
        req = ex.request
        if self._uses_resource_path:
            prefix = self._prefix
            resource = ex.resource_path
            if prefix.endswith("/") and resource.startswith("/"):
                resource = resource[1:]
            elif not prefix.endswith("/") and not resource.startswith("/") and resource:
                resource = "/" + resource
            path = prefix + resource + self._suffix
            query = req.query
        else:
            path = self._prefix
            query = req.query if settings.forward_query_params else ""
        if self._fixed_query:
            query = f"{self._fixed_query}&{query}" if query else self._fixed_query
        target = (path or "/") + ("?" + query if query else "")
        cfg: StraightThroughRoutingConfig = self.config  # type: ignore[assignment]
        ex.route = RouteTarget(
            scheme=self._scheme,
            host=self._host,
            port=self._port,
            target=target,
            method=req.method if self._method == "CUSTOM" else self._method,
            connect_timeout=cfg.connectTimeout if cfg.connectTimeout else settings.connect_timeout,
            read_timeout=cfg.readTimeout if cfg.readTimeout else settings.read_timeout,
            url=f"{self._scheme}://{self._netloc}{target}",
        )
        return None
