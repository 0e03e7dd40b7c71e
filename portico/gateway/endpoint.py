"""A routing endpoint, compiled once per snapshot and resolved per request (compiled with mypyc:
every routed call goes through :meth:`Endpoint.route`).

An endpoint URI may hold variables (``${request.headers.X}``, ``${sys:resource_path}``, ...) and
aliases: ``${MyAlias}`` is replaced by a simple alias's value or an endpoint alias's
``endPointURI`` (the snapshot part ``portico.gateway.parts.aliases`` indexes both). URIs without
variables other than ``${sys:resource_path}`` take the fast path: split once, joined per request.
The routing policies' config models and checks live in :mod:`portico.policies._endpoint`."""

from __future__ import annotations

import re
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

from portico.gateway.exchange import Exchange, RouteTarget, authority
from portico.gateway.tls import OUTBOUND, TLS_FAILURE
from portico.gateway.variables import SYSTEM_NAMES, Template
from portico.policies.base import Violation

RESOURCE_PATH = "${sys:resource_path}"
ENDPOINT_ALIASES = "endpoint_aliases"  # snap.extras key: alias name -> parts.aliases.EndpointAliasView
VAR = re.compile(r"\$\{([^}]+)\}")
_SLASHES = re.compile(r"/{2,}")


def alias_names(uri: str) -> tuple[str, ...]:
    """The ``${name}`` references that are neither system variables nor request/path variables."""
    names = (m.group(1).strip() for m in VAR.finditer(uri))
    return tuple(n for n in names if n not in SYSTEM_NAMES and "." not in n and ":" not in n)


class TlsChoice:
    """What an endpoint's ``sslConfig`` became in this snapshot: ``context`` is set by the snapshot
    part ``gateway/parts/tls.py`` (a context, or why none can be built); None until then, and then
    the endpoint alias or the outbound defaults apply."""

    __slots__ = ("aliases", "config", "context")

    def __init__(self, config: Any, aliases: tuple[str, ...]) -> None:
        self.config = config
        self.aliases = aliases
        self.context: ssl.SSLContext | str | None = None


class Endpoint:
    """A compiled endpoint: ``route(ex)`` builds the :class:`RouteTarget` or a violation."""

    __slots__ = (
        "_aliases", "_fast", "_fixed_query", "_host", "_host_header", "_method", "_netloc", "_port", "_prefix",
        "_scheme", "_suffix", "_template", "_uses_resource_path", "connect_timeout", "read_timeout", "tls_choice",
        "uri",
    )

    def __init__(self, uri: str, method: str = "CUSTOM", connect_timeout: float | None = None,
                 read_timeout: float | None = None, ssl_config: Any = None,
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
            self._host_header = authority(self._scheme, self._host, self._port)
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

    def step(self, ex: Exchange) -> Violation | None:
        """Route ``ex`` here: a routing policy's request step (compiled, unlike the policy's ``run``)."""
        target = self.route(ex)
        if isinstance(target, Violation):
            return target
        ex.route = target
        return None

    def route(self, ex: Exchange) -> RouteTarget | Violation:
        if self._fast:
            return self._target(ex, self._scheme, self._host, self._port, self._netloc, self._joined_path(ex),
                                self._fixed_query, self._uses_resource_path, self._aliased_timeouts(ex),
                                self._host_header)
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
                            parts.netloc, path, parts.query, self._uses_resource_path, self._aliased_timeouts(ex), b"")

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
                with_query: bool, timeouts: tuple[float, float], host_header: bytes) -> RouteTarget | Violation:
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
            host_header=host_header,
        )


def _defined(ex: Exchange, name: str) -> bool:
    if ex.variables and name in ex.variables:
        return True
    return name in ex.snapshot.simple_aliases
