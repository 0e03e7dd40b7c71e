"""``contextBasedRouting`` ("Conditional Routing", routing stage): route by request context.

Each of ``contextRules`` holds ``contextCondition``s joined by ``contextConditionOperator``
(``and``/``or``) and a ``routeTo``; the first rule that holds wins, else the default ``routeTo``.
Condition variables (``conditionVariable``):

* ``Consumer``: the identified application's id or name equals ``conditionValue``.
* ``Date`` (``YYYY-MM-DD``) and ``Time`` (``HH:MM[:SS]``, time of day): today / now, in UTC,
  compared with ``conditionOperator``.
* ``IPV4`` / ``IPV6``: the client address is within ``fromIp`` .. ``toIp``.
* ``predefined``: ``conditionDataType`` USER, APPLICATION, HTTP_METHOD or CLIENT_IP.
* ``Custom``: ``conditionName`` is a variable (``${request.headers.X}``, ``${request.query.x}``, ...).

Operators: EQ, NE, LT, GT, LE, GE (numbers compare as numbers), CONTAINS, EXISTS."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from portico.gateway.endpoint import TlsChoice
from portico.gateway.exchange import Exchange
from portico.gateway.variables import Template
from portico.policies._endpoint import RouteTo, RoutingHandler, endpoint_choices, endpoint_of
from portico.policies.base import PolicyConfig, Violation

Operator = Literal["EQ", "NE", "LT", "GT", "LE", "GE", "CONTAINS", "EXISTS"]
_PREDEFINED: dict[str, Callable[[Exchange], str]] = {
    "USER": lambda ex: ex.user or "",
    "APPLICATION": lambda ex: ex.application.name if ex.application else "",
    "HTTP_METHOD": lambda ex: ex.request.method,
    "CLIENT_IP": lambda ex: ex.client_ip,
}


class ContextCondition(PolicyConfig):
    conditionVariable: Literal["Consumer", "Date", "Time", "IPV4", "IPV6", "predefined", "Custom"] = Field(
        description="What the condition looks at.")
    conditionOperator: Operator = Field(default="EQ", description="Comparison operator.")
    conditionDataType: Literal["USER", "APPLICATION", "HTTP_METHOD", "CLIENT_IP"] | None = Field(
        default=None, description="The predefined variable (conditionVariable predefined).")
    conditionName: str | None = Field(default=None, description="The variable expression (conditionVariable Custom).")
    conditionValue: str | None = Field(default=None, description="The value compared against.")
    fromIp: str | None = Field(default=None, description="First address of the range (IPV4/IPV6).")
    toIp: str | None = Field(default=None, description="Last address of the range (IPV4/IPV6).")

    @field_validator("fromIp", "toIp")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value.strip())
        return value

    @model_validator(mode="after")
    def _complete(self) -> ContextCondition:
        kind = self.conditionVariable
        if kind in ("IPV4", "IPV6") and (not self.fromIp or not self.toIp):
            raise ValueError(f"fromIp and toIp are required for {kind}")
        if kind == "predefined" and self.conditionDataType is None:
            raise ValueError("conditionDataType is required for predefined")
        if kind == "Custom" and not self.conditionName:
            raise ValueError("conditionName is required for Custom")
        if kind not in ("IPV4", "IPV6") and self.conditionOperator != "EXISTS" and self.conditionValue is None:
            raise ValueError(f"conditionValue is required for {kind}")
        if kind == "Date":
            time.strptime(str(self.conditionValue), "%Y-%m-%d")
        if kind == "Time" and not _parse_time(str(self.conditionValue)):
            raise ValueError("conditionValue must be HH:MM or HH:MM:SS for Time")
        return self


class ContextRule(PolicyConfig):
    name: str = Field(default="", description="Rule name.")
    contextConditionOperator: Literal["and", "or", "AND", "OR"] = Field(
        default="and", description="How the conditions combine.")
    contextCondition: list[ContextCondition] = Field(min_length=1, description="The conditions.")
    routeTo: RouteTo = Field(description="The endpoint when the rule holds.")


class ContextBasedRoutingConfig(PolicyConfig):
    routeTo: RouteTo = Field(description="The default endpoint, when no rule holds.")
    contextRules: list[ContextRule] = Field(default_factory=list, description="Rules tried in order.")


def _parse_time(text: str) -> str | None:
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            return time.strftime("%H:%M:%S", time.strptime(text.strip(), fmt))
        except ValueError:
            continue
    return None


def _compare(actual: str, op: str, expected: str) -> bool:
    if op == "EXISTS":
        return actual != ""
    if op == "CONTAINS":
        return expected in actual
    try:
        a: float | str = float(actual)
        b: float | str = float(expected)
    except ValueError:
        a, b = actual, expected
    return {"EQ": a == b, "NE": a != b, "LT": a < b, "GT": a > b, "LE": a <= b, "GE": a >= b}[op]  # type: ignore[operator]


Check = Callable[[Exchange], bool]


def _compile(c: ContextCondition) -> Check:
    op, value = c.conditionOperator, c.conditionValue or ""
    if c.conditionVariable in ("IPV4", "IPV6"):
        low, high = int(ipaddress.ip_address(str(c.fromIp).strip())), int(ipaddress.ip_address(str(c.toIp).strip()))

        def in_range(ex: Exchange) -> bool:
            try:
                return low <= int(ipaddress.ip_address(ex.client_ip)) <= high
            except ValueError:
                return False

        return in_range
    if c.conditionVariable == "Consumer":
        return lambda ex: ex.application is not None and _compare(
            ex.application.id if ex.application.id == value else ex.application.name, op, value)
    if c.conditionVariable == "Date":
        return lambda ex: _compare(time.strftime("%Y-%m-%d", time.gmtime()), op, value)
    if c.conditionVariable == "Time":
        at = _parse_time(value) or ""
        return lambda ex: _compare(time.strftime("%H:%M:%S", time.gmtime()), op, at)
    if c.conditionVariable == "predefined":
        get = _PREDEFINED[str(c.conditionDataType)]
        return lambda ex: _compare(get(ex), op, value)
    name = str(c.conditionName)
    template = Template(name if "${" in name else "${" + name + "}")
    return lambda ex: _compare(template.render(ex), op, value)


class _Rule:
    def __init__(self, rule: ContextRule) -> None:
        self.checks = tuple(_compile(c) for c in rule.contextCondition)
        self.any = rule.contextConditionOperator.lower() == "or"
        self.endpoint = endpoint_of(rule.routeTo)

    def holds(self, ex: Exchange) -> bool:
        return any(c(ex) for c in self.checks) if self.any else all(c(ex) for c in self.checks)


class ContextBasedRouting(RoutingHandler):
    template_key = "contextBasedRouting"
    title = "Conditional Routing"
    Config = ContextBasedRoutingConfig

    def __init__(self, config: ContextBasedRoutingConfig) -> None:
        super().__init__(config)
        self._default = endpoint_of(config.routeTo)
        self._rules = [_Rule(r) for r in config.contextRules]

    def tls_choices(self) -> Iterable[TlsChoice]:
        return endpoint_choices([self._default, *(r.endpoint for r in self._rules)])

    def run(self, ex: Exchange) -> Violation | None:
        endpoint = next((r.endpoint for r in self._rules if r.holds(ex)), self._default)
        target = endpoint.route(ex)
        if isinstance(target, Violation):
            return target
        ex.route = target
        return None
