"""The ``${...}`` references of the transformation and masking policies.

Beyond the gateway's variables (:mod:`portico.gateway.variables`, used for every name not listed
here) these address parts of the message, on the request or the response side:

* ``${request.headers.NAME}`` / ``${response.headers.NAME}`` (``response.header.`` too)
* ``${request.query.NAME}``, ``${request.path}`` (the resource path), ``${request.path.NAME}``
  (a path parameter), ``${request.httpMethod}``
* ``${request.payload}`` / ``${response.payload}`` (the whole body),
  ``${...payload.jsonPath[$.a.b]}``, ``${...payload.xpath[//a/b]}``, ``${...payload.regex[[0-9]+]}``
  and the short form ``${request.payload.a.b}`` (= ``jsonPath[$.a.b]``)
* ``${response.statusCode}``, ``${response.statusMessage}``

A :class:`Ref` is parsed once at configuration time; reading it per request parses the body at
most once per exchange and body (cached in the exchange's policy state). A reference that does
not resolve (absent header, body not JSON for a JSONPath read) reads as the empty string."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl

from portico.gateway.variables import getter_for
from portico.policies.payload import PayloadError
from portico.policies.payload.documents import (
    as_text,
    compile_jsonpath,
    compile_xpath,
    json_first,
    load_json,
    load_xml,
    xml_first,
)
from portico.policies.payload.user_regex import compile_user_regex, user_search

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

Side = Literal["request", "response"]
RefKind = Literal[
    "header", "query", "path", "pathParam", "method", "payload", "jsonPath", "xpath", "regex",
    "statusCode", "statusMessage",
]
_CACHE_KEY = "portico.payload.parsed"
_QUERY = re.compile(r"^(jsonPath|xpath|regex)\[(.*?)\]?$", re.DOTALL)  # an unclosed query fails to compile


@dataclass(frozen=True, slots=True)
class Ref:
    side: Side
    kind: RefKind
    arg: str = ""
    compiled: Any = None  # JSONPath, etree.XPath or re.Pattern for payload queries

    def read(self, ex: Exchange) -> str:
        return _read(self, ex)


def _payload_ref(side: Side, rest: str) -> Ref:
    if not rest:
        return Ref(side, "payload")
    m = _QUERY.match(rest)
    if m is None:  # ${request.payload.a.b}: the reference's short JSONPath form
        return Ref(side, "jsonPath", "$." + rest, compile_jsonpath("$." + rest))
    kind, arg = m.group(1), m.group(2)
    if kind == "jsonPath":
        return Ref(side, "jsonPath", arg, compile_jsonpath(arg))
    if kind == "xpath":
        return Ref(side, "xpath", arg, compile_xpath(arg))
    return Ref(side, "regex", arg, compile_user_regex(arg))


def parse_ref(name: str) -> Ref | None:
    """The message part ``name`` (the text inside ``${}``) addresses, or None for other variables.

    Raises ValueError for a malformed payload query (bad JSONPath, XPath or regex)."""
    name = name.strip()
    side_text, dot, rest = name.partition(".")
    if side_text not in ("request", "response") or not dot:
        return None
    side: Side = "request" if side_text == "request" else "response"
    part, _, arg = rest.partition(".")
    if part in ("headers", "header") and arg:
        return Ref(side, "header", arg.lower())
    if part == "payload":
        return _payload_ref(side, arg)
    if side == "request":
        if part == "query" and arg:
            return Ref(side, "query", arg)
        if part == "path":
            return Ref(side, "pathParam", arg) if arg else Ref(side, "path")
        if rest == "httpMethod":
            return Ref(side, "method")
    elif rest in ("statusCode", "statusMessage"):
        return Ref(side, rest)  # type: ignore[arg-type]
    return None


def split_references(source: str) -> list[tuple[bool, str]]:
    """``source`` as (is_reference, text) parts; brackets inside ``${...}`` may hold ``}``."""
    parts: list[tuple[bool, str]] = []
    i = 0
    while True:
        start = source.find("${", i)
        if start < 0:
            break
        depth, j = 0, start + 2
        while j < len(source):
            ch = source[j]
            if ch == "[":
                depth += 1
            elif ch == "]" and depth:
                depth -= 1
            elif ch == "}" and not depth:
                break
            j += 1
        if j >= len(source):  # unbalanced brackets: end at the first '}' (the query will not compile)
            j = source.find("}", start + 2)
            if j < 0:
                break  # unterminated: the rest is literal
        if start > i:
            parts.append((False, source[i:start]))
        parts.append((True, source[start + 2 : j]))
        i = j + 1
    if i < len(source):
        parts.append((False, source[i:]))
    return parts


def reference_only(source: str) -> str | None:
    """The name inside ``source`` when it is exactly one ``${...}``, else None."""
    parts = split_references(source.strip())
    if len(parts) == 1 and parts[0][0]:
        return parts[0][1]
    return None


class MessageTemplate:
    """A parameter value with ``${...}`` references, compiled once, rendered per request."""

    __slots__ = ("_parts", "refs", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        parts: list[Any] = []
        refs: list[Ref] = []
        for is_ref, text in split_references(source):
            if not is_ref:
                parts.append(text)
                continue
            ref = parse_ref(text)
            if ref is None:
                parts.append(getter_for(text))
            else:
                refs.append(ref)
                parts.append(ref)
        self._parts = tuple(parts)
        self.refs = tuple(refs)

    def reads(self, side: Side, kinds: tuple[str, ...] = ("payload", "jsonPath", "xpath", "regex")) -> bool:
        return any(r.side == side and r.kind in kinds for r in self.refs)

    def render(self, ex: Exchange) -> str:
        out: list[str] = []
        for p in self._parts:
            if isinstance(p, str):
                out.append(p)
            elif isinstance(p, Ref):
                out.append(p.read(ex))
            else:
                out.append(p(ex))
        return "".join(out)


# -- reading -------------------------------------------------------------------------------------


def _body(ref: Ref, ex: Exchange) -> bytes:
    if ref.side == "request":
        return ex.body or b""
    return ex.response.body if ex.response is not None else b""


def _parsed(ref: Ref, ex: Exchange, kind: str) -> Any:
    """The body parsed as ``kind``, once per exchange and body object."""
    body = _body(ref, ex)
    cache = ex.policy_state(_CACHE_KEY)
    key = f"{ref.side}:{kind}"
    hit = cache.get(key)
    if hit is not None and hit[0] is body:
        return hit[1]
    try:
        doc = load_json(body) if kind == "json" else load_xml(body)
    except PayloadError:
        doc = None
    cache[key] = (body, doc)
    return doc


def _read(ref: Ref, ex: Exchange) -> str:
    kind = ref.kind
    if kind == "header":
        if ref.side == "request":
            value = ex.header(ref.arg.encode("latin-1"))
        else:
            value = ex.response.header(ref.arg.encode("latin-1")) if ex.response else None
        return value.decode("latin-1") if value is not None else ""
    if kind == "query":
        return next((v for k, v in parse_qsl(ex.query, keep_blank_values=True) if k == ref.arg), "")
    if kind == "path":
        return ex.resource_path
    if kind == "pathParam":
        return ex.path_params.get(ref.arg, "")
    if kind == "method":
        return ex.method
    if kind == "statusCode":
        return str(ex.response.status) if ex.response else ""
    if kind == "statusMessage":
        return ex.response.reason if ex.response else ""
    if kind == "payload":
        return _body(ref, ex).decode("utf-8", "replace")
    if kind == "regex":
        m = user_search(ref.compiled, _body(ref, ex).decode("utf-8", "replace"))
        return ((m.group(1) or "") if m.re.groups else m.group(0)) if m else ""
    doc = _parsed(ref, ex, "json" if kind == "jsonPath" else "xml")
    if doc is None:
        return ""
    return as_text(json_first(ref.compiled, doc)) if kind == "jsonPath" else xml_first(ref.compiled, doc)
