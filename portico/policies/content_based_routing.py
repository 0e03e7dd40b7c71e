"""``contentBasedRouting`` (routing stage): route by the request payload.

Each of ``contentRules`` has a ``payloadIdentifier`` (``expressionType`` jsonPath, xpath or regex,
and an ``expression``; optional ``value``) and a ``routeTo``. A rule holds when the expression
finds something in the payload (and, with ``value``, one of the matches equals it). The first
rule that holds wins, else ``routeTo``. A payload that does not parse matches no rule. An
expression holding ``${...}`` variables is rendered instead (it holds when non-empty)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as jsonpath_parse
from lxml import etree
from pydantic import Field, model_validator

from portico.gateway.endpoint import TlsChoice
from portico.gateway.exchange import Exchange
from portico.gateway.variables import Template
from portico.policies._endpoint import RouteTo, RoutingHandler, endpoint_choices, endpoint_of
from portico.policies.base import PolicyConfig, Violation
from portico.policies.payload.user_regex import compile_user_regex, user_findall

_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class Namespace(PolicyConfig):
    prefix: str = Field(description="Namespace prefix used in the XPath.")
    uri: str = Field(description="Namespace URI.")


class PayloadIdentifier(PolicyConfig):
    expressionType: Literal["jsonPath", "xpath", "regex"] = Field(description="Kind of expression.")
    expression: str = Field(min_length=1, description="The JSONPath, XPath or regular expression.")
    value: str | None = Field(default=None, description="When set, a match must equal it.")
    namespace: list[Namespace] = Field(default_factory=list, description="XPath namespaces.")

    @model_validator(mode="after")
    def _compiles(self) -> PayloadIdentifier:
        _matcher(self)  # raises ValueError naming the problem
        return self


class ContentRule(PolicyConfig):
    name: str = Field(default="", description="Rule name.")
    payloadIdentifier: PayloadIdentifier = Field(description="What to look for in the payload.")
    routeTo: RouteTo = Field(description="The endpoint when the rule holds.")


class ContentBasedRoutingConfig(PolicyConfig):
    routeTo: RouteTo = Field(description="The default endpoint, when no rule holds.")
    contentRules: list[ContentRule] = Field(default_factory=list, description="Rules tried in order.")


Matcher = Callable[[Exchange, dict[str, Any]], list[str]]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) or value is None:
        return "null" if value is None else str(value)
    return orjson.dumps(value).decode()


def _matcher(p: PayloadIdentifier) -> Matcher:
    expr = p.expression
    if "${" in expr:
        template = Template(expr)
        return lambda ex, cache: [v] if (v := template.render(ex)) else []
    if p.expressionType == "jsonPath":
        try:
            path = jsonpath_parse(expr)
        except (JsonPathParserError, Exception) as exc:  # the parser raises plain Exceptions too
            raise ValueError(f"invalid JSONPath {expr!r}: {exc}") from None

        def json_matches(ex: Exchange, cache: dict[str, Any]) -> list[str]:
            doc = _parsed(ex, cache, "json")
            return [] if doc is _NOTHING else [_text(m.value) for m in path.find(doc)]

        return json_matches
    if p.expressionType == "xpath":
        try:
            xpath = etree.XPath(expr, namespaces={n.prefix: n.uri for n in p.namespace})
        except etree.XPathSyntaxError as exc:
            raise ValueError(f"invalid XPath {expr!r}: {exc}") from None

        def xml_matches(ex: Exchange, cache: dict[str, Any]) -> list[str]:
            doc = _parsed(ex, cache, "xml")
            if doc is _NOTHING:
                return []
            try:
                found = xpath(doc)
            except etree.XPathError:
                return []
            items = found if isinstance(found, list) else [found]
            out = []
            for item in items:
                out.append(item.text or "" if isinstance(item, etree._Element) else str(item))
            return [o for o in out if o != "False"]

        return xml_matches
    pattern = compile_user_regex(expr)
    return lambda ex, cache: user_findall(pattern, (ex.body or b"").decode("utf-8", "replace"))


_NOTHING = object()


def _parsed(ex: Exchange, cache: dict[str, Any], kind: str) -> Any:
    if kind not in cache:
        body = ex.body or b""
        try:
            cache[kind] = orjson.loads(body) if kind == "json" else etree.fromstring(body, _XML_PARSER)
        except (orjson.JSONDecodeError, etree.XMLSyntaxError, ValueError):
            cache[kind] = _NOTHING
    return cache[kind]


class _Rule:
    def __init__(self, rule: ContentRule) -> None:
        self.match = _matcher(rule.payloadIdentifier)
        self.value = rule.payloadIdentifier.value
        self.endpoint = endpoint_of(rule.routeTo)

    def holds(self, ex: Exchange, cache: dict[str, Any]) -> bool:
        found = self.match(ex, cache)
        return bool(found) if self.value is None else self.value in found


class ContentBasedRouting(RoutingHandler):
    template_key = "contentBasedRouting"
    title = "Content-based Routing"
    Config = ContentBasedRoutingConfig
    needs_request_body = True

    def __init__(self, config: ContentBasedRoutingConfig) -> None:
        super().__init__(config)
        self._default = endpoint_of(config.routeTo)
        self._rules = [_Rule(r) for r in config.contentRules]

    def tls_choices(self) -> Iterable[TlsChoice]:
        return endpoint_choices([self._default, *(r.endpoint for r in self._rules)])

    def run(self, ex: Exchange) -> Violation | None:
        cache: dict[str, Any] = {}
        endpoint = next((r.endpoint for r in self._rules if r.holds(ex, cache)), self._default)
        target = endpoint.route(ex)
        if isinstance(target, Violation):
            return target
        ex.route = target
        return None
