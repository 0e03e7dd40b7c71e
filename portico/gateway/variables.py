"""``${...}`` variables in policy parameters, compiled once and resolved per request.

Supported: ``${request.headers.NAME}``, ``${request.query.NAME}``, ``${request.path}``,
``${request.httpMethod}``, ``${request.payload}``, ``${sys:resource_path}``,
``${inboundIP}``, ``${inboundRequestURI}``, ``${apiName}``, ``${apiVersion}``,
``${apiId}``, ``${application.id}``, ``${application.name}``, ``${packageId}``,
``${planId}``, ``${user}``, ``${path.NAME}`` (path parameters), variables set by
policies (``ex.set_variable``), and simple aliases ``${aliasName}``. An unknown
variable resolves to the empty string."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

Getter = Callable[["Exchange"], str]
_VAR = re.compile(r"\$\{([^}]+)\}")


def _header(name: str) -> Getter:
    key = name.lower().encode("latin-1")

    def get(ex: Exchange) -> str:
        value = ex.request.header(key)
        return value.decode("latin-1") if value is not None else ""

    return get


def _query(name: str) -> Getter:
    def get(ex: Exchange) -> str:
        from urllib.parse import parse_qs

        values = parse_qs(ex.request.query, keep_blank_values=True).get(name)
        return values[0] if values else ""

    return get


def _path_param(name: str) -> Getter:
    return lambda ex: ex.path_params.get(name, "")


def _named(name: str) -> Getter:
    """A variable set by a policy, else a simple alias of that name."""

    def get(ex: Exchange) -> str:
        if ex.variables and name in ex.variables:
            return ex.variables[name]
        aliases: dict[str, str] = getattr(ex.snapshot, "simple_aliases", {})
        return aliases.get(name, "")

    return get


_FIXED: dict[str, Getter] = {
    "request.path": lambda ex: ex.request.path,
    "request.httpMethod": lambda ex: ex.request.method,
    "request.payload": lambda ex: (ex.body or b"").decode("utf-8", "replace"),
    "sys:resource_path": lambda ex: ex.resource_path.lstrip("/"),
    "inboundIP": lambda ex: ex.client_ip,
    "inboundRequestURI": lambda ex: ex.request.path + ("?" + ex.request.query if ex.request.query else ""),
    "apiName": lambda ex: ex.api.name,
    "apiVersion": lambda ex: ex.api.version,
    "apiId": lambda ex: ex.api.id,
    "application.id": lambda ex: ex.application.id if ex.application else "",
    "application.name": lambda ex: ex.application.name if ex.application else "",
    "packageId": lambda ex: ex.package_id or "",
    "planId": lambda ex: ex.plan_id or "",
    "user": lambda ex: ex.user or "",
}
SYSTEM_NAMES = frozenset(_FIXED)  # names that are never aliases
_PREFIXED: tuple[tuple[str, Callable[[str], Getter]], ...] = (
    ("request.headers.", _header),
    ("request.query.", _query),
    ("path.", _path_param),
)


def getter_for(name: str) -> Getter:
    name = name.strip()
    fixed = _FIXED.get(name)
    if fixed is not None:
        return fixed
    for prefix, make in _PREFIXED:
        if name.startswith(prefix):
            return make(name[len(prefix):])
    return _named(name)


def _escaped(getter: Getter, name: str, escape: Callable[[str, str], str]) -> Getter:
    return lambda ex: escape(name, getter(ex))


class Template:
    """A string with ``${...}`` variables, split once into literals and getters."""

    __slots__ = ("_parts", "names", "source")

    def __init__(self, source: str, escape: Callable[[str, str], str] | None = None) -> None:
        """``escape(name, value)``, when given, is applied to every resolved value (URIs use it
        to percent-encode request-derived values so they cannot add path segments or a query)."""
        self.source = source
        self.names = tuple(m.group(1).strip() for m in _VAR.finditer(source))
        parts: list[str | Getter] = []
        last = 0
        for m in _VAR.finditer(source):
            if m.start() > last:
                parts.append(source[last : m.start()])
            getter = getter_for(m.group(1))
            if escape is not None:
                getter = _escaped(getter, m.group(1).strip(), escape)
            parts.append(getter)
            last = m.end()
        if last < len(source):
            parts.append(source[last:])
        self._parts = tuple(parts)

    @property
    def constant(self) -> bool:
        return not self.names

    def render(self, ex: Exchange) -> str:
        return "".join(p if isinstance(p, str) else p(ex) for p in self._parts)
