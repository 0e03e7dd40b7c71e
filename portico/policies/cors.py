"""``cors`` (responseProcessing): Cross-Origin Resource Sharing.

On responses to calls that carry an allowed ``Origin`` it adds ``Access-Control-Allow-Origin``
(the origin itself; ``*`` only for the ``*`` entry without credentials),
``Access-Control-Allow-Credentials`` and ``Access-Control-Expose-Headers``. Preflights
(``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) are answered by the gateway
before any other policy runs (they carry no credentials), even when the API defines no OPTIONS
operation: :func:`preflight` is called by the runtime while it matches the resource. An allowed
preflight gets 200 with the allowed methods, headers and max age; a refused one 403 without CORS
headers (the browser then blocks the call).

Origins: ``*``, a full origin (``https://app.example.com:8443``), a host without scheme
(``10.60.20.30``, which any scheme and port of that host matches), each with ``*`` wildcards
(``https://*.example.com``)."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from portico.gateway.exchange import BufferedResponse
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class CorsAttributesConfig(PolicyConfig):
    allowedOrigins: list[str] = Field(min_length=1, description="Origins allowed to call (wildcards allowed).")
    allowHeaders: list[str] = Field(
        default_factory=list, description="Request headers a preflight may ask for ('*': any).")
    exposeHeaders: list[str] = Field(default_factory=list, description="Response headers the browser may read.")
    allowCredentials: bool = Field(default=False, description="Allow cookies and credentials on CORS calls.")
    allowMethods: list[str] = Field(
        default_factory=list, description="Methods a preflight may ask for; empty: the resource's methods.")
    maxAge: int | None = Field(default=None, ge=0, le=86400 * 365,
                               description="Seconds a browser may cache a preflight answer.")

    @field_validator("allowHeaders", "exposeHeaders")
    @classmethod
    def _header_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if name != "*" and not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a header name")
        return names

    @field_validator("allowMethods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        for m in methods:
            if not _TOKEN.match(m):
                raise ValueError(f"{m!r} is not an HTTP method")
        return [m.upper() for m in methods]

    @field_validator("allowedOrigins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not origin.strip() or any(c in origin for c in " ,\r\n"):
                raise ValueError(f"{origin!r} is not an origin")
        return [o.strip().rstrip("/") for o in origins]


class CorsConfig(PolicyConfig):
    corsAttributes: CorsAttributesConfig = Field(description="The CORS settings.")


def _origin_pattern(entry: str) -> re.Pattern[str]:
    body = fnmatch.translate(entry.lower())
    if "://" in entry:
        return re.compile(body)
    # A bare host matches any scheme, and any port unless the entry names one.
    port = "" if re.search(r":\d+$", entry) else r"(?::\d+)?"
    return re.compile(r"(?s:[a-z][a-z0-9+.-]*://" + body[4:-3] + port + r")\Z")


class Cors(PolicyHandler):
    template_key = "cors"
    stage = "responseProcessing"
    title = "CORS"
    Config = CorsConfig

    def __init__(self, config: CorsConfig) -> None:
        super().__init__(config)
        attrs = config.corsAttributes
        self._any_origin = "*" in attrs.allowedOrigins
        self._patterns = tuple(_origin_pattern(o) for o in attrs.allowedOrigins if o != "*")
        self._credentials = attrs.allowCredentials
        self._any_header = "*" in attrs.allowHeaders
        self._headers = frozenset(h.lower() for h in attrs.allowHeaders)
        self._methods = tuple(attrs.allowMethods)
        self._expose = ", ".join(attrs.exposeHeaders).encode("latin-1")
        self._max_age = str(attrs.maxAge).encode() if attrs.maxAge is not None else None

    def allows(self, origin: str) -> bool:
        if self._any_origin:
            return True
        lowered = origin.lower()
        return any(p.match(lowered) for p in self._patterns)

    def _origin_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        wildcard = self._any_origin and not self._credentials
        out = [(b"access-control-allow-origin", b"*" if wildcard else origin)]
        if not wildcard:
            out.append((b"vary", b"Origin"))
        if self._credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    def on_response(self, ex: Exchange) -> Violation | None:
        origin = ex.request.header(b"origin")
        if origin is None or ex.response is None or not self.allows(origin.decode("latin-1")):
            return None
        if ex.request.method == "OPTIONS" and ex.request.header(b"access-control-request-method") is not None:
            return None  # a preflight: answered (or refused) completely by answer_preflight
        for name, value in self._origin_headers(origin):
            ex.response.set_header(name, value)
        if self._expose:
            ex.response.set_header(b"access-control-expose-headers", self._expose)
        return None

    def answer_preflight(self, ex: Exchange, resource_methods: frozenset[str]) -> BufferedResponse:
        origin = ex.request.header(b"origin") or b""
        method = (ex.request.header(b"access-control-request-method") or b"").decode("latin-1").strip().upper()
        asked = ex.request.header(b"access-control-request-headers") or b""
        names = [h.strip().lower() for h in asked.decode("latin-1").split(",") if h.strip()]
        methods = self._methods or tuple(sorted(resource_methods))
        if not self.allows(origin.decode("latin-1")):
            return _refused(f"The origin {origin.decode('latin-1')} is not allowed")
        if method not in methods:
            return _refused(f"The method {method} is not allowed for cross-origin calls")
        refused = [n for n in names if not self._any_header and n not in self._headers]
        if refused:
            return _refused(f"The header {refused[0]} is not allowed for cross-origin calls")
        headers = self._origin_headers(origin)
        headers.append((b"access-control-allow-methods", ", ".join(methods).encode("latin-1")))
        if names:
            headers.append((b"access-control-allow-headers", asked.strip()))
        if self._max_age is not None:
            headers.append((b"access-control-max-age", self._max_age))
        headers.append((b"content-length", b"0"))
        return BufferedResponse(200, headers, b"", "OK")


def _refused(message: str) -> BufferedResponse:
    body = message.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    return BufferedResponse(403, headers, body, "Forbidden")


def preflight(ex: Exchange, resource_methods: frozenset[str]) -> BufferedResponse | None:
    """The gateway's answer to a CORS preflight on an API with a ``cors`` action, else None.
    Called by the runtime for OPTIONS requests only, so other calls pay nothing."""
    if ex.request.header(b"origin") is None or ex.request.header(b"access-control-request-method") is None:
        return None
    for handler in ex.api.plan.response:
        if isinstance(handler, Cors):
            return handler.answer_preflight(ex, resource_methods)
    return None
