"""The ``transformationConditions`` group: when a transformation applies.

Wire shape (Postman "Create Request Transformation")::

    {"templateKey": "transformationConditions", "parameters": [
      {"templateKey": "logicalConnector", "values": ["OR"]},
      {"templateKey": "transformationCondition", "parameters": [
        {"templateKey": "transformationVariable", "values": ["${request.httpMethod}"]},
        {"templateKey": "transformationConditionOperator", "values": ["equals"]},
        {"templateKey": "transformationConditionValue", "values": ["POST"]}]}]}

Operators: equals, equalsIgnoreCase, notEquals, notEqualsIgnoreCase, contains, notContains,
exists, notExists, range (``low-high``, inclusive), greaterThan, lessThan (numeric; a value that is
not a number fails the check). No condition means the transformation always applies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from portico.policies.base import PolicyConfig
from portico.policies.payload.expressions import MessageTemplate

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

Operator = Literal[
    "equals", "equalsIgnoreCase", "notEquals", "notEqualsIgnoreCase", "contains", "notContains",
    "exists", "notExists", "range", "greaterThan", "lessThan",
]


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _range(text: str) -> tuple[float, float] | None:
    low, sep, high = text.strip().partition("-")
    if not sep:
        return None
    lo, hi = _number(low), _number(high)
    return (lo, hi) if lo is not None and hi is not None and lo <= hi else None


def _compare(op: Operator, expected: str) -> Callable[[str], bool]:
    """``op`` against a constant ``expected``, as a predicate over the variable's value."""
    if op == "equals":
        return lambda v: v == expected
    if op == "equalsIgnoreCase":
        return lambda v: v.lower() == expected.lower()
    if op == "notEquals":
        return lambda v: v != expected
    if op == "notEqualsIgnoreCase":
        return lambda v: v.lower() != expected.lower()
    if op == "contains":
        return lambda v: expected in v
    if op == "notContains":
        return lambda v: expected not in v
    if op == "exists":
        return lambda v: v != ""
    if op == "notExists":
        return lambda v: v == ""
    if op == "range":
        bounds = _range(expected)
        assert bounds is not None  # checked by the config
        return lambda v: (n := _number(v)) is not None and bounds[0] <= n <= bounds[1]
    limit = _number(expected)
    assert limit is not None
    if op == "greaterThan":
        return lambda v: (n := _number(v)) is not None and n > limit
    return lambda v: (n := _number(v)) is not None and n < limit


class TransformationCondition(PolicyConfig):
    transformationVariable: str = Field(description="A ${...} variable (or text with variables) to test.")
    transformationConditionOperator: Operator = Field(default="equals", description="How to compare.")
    transformationConditionValue: str = Field(
        default="", description="The value to compare with; for range 'low-high'. May not contain variables."
    )

    @field_validator("transformationVariable")
    @classmethod
    def _check_variable(cls, value: str) -> str:
        MessageTemplate(value)  # raises ValueError for a malformed payload query
        return value

    @model_validator(mode="after")
    def _check_value(self) -> TransformationCondition:
        op, value = self.transformationConditionOperator, self.transformationConditionValue
        if op == "range" and _range(value) is None:
            raise ValueError(f"range needs 'low-high' numbers, got {value!r}")
        if op in ("greaterThan", "lessThan") and _number(value) is None:
            raise ValueError(f"{op} needs a number, got {value!r}")
        return self


class TransformationConditions(PolicyConfig):
    logicalConnector: Literal["AND", "OR"] = Field(default="OR", description="How the conditions combine.")
    transformationCondition: list[TransformationCondition] = Field(
        default_factory=list, description="The conditions; none means always."
    )


class CompiledConditions:
    """Built once per snapshot; ``matches(ex)`` per request."""

    def __init__(self, config: TransformationConditions | None) -> None:
        self.all = config is not None and config.logicalConnector == "AND"
        self.checks: tuple[tuple[MessageTemplate, Callable[[str], bool]], ...] = tuple(
            (MessageTemplate(c.transformationVariable),
             _compare(c.transformationConditionOperator, c.transformationConditionValue))
            for c in (config.transformationCondition if config else [])
        )

    def templates(self) -> tuple[MessageTemplate, ...]:
        return tuple(t for t, _ in self.checks)

    def matches(self, ex: Exchange) -> bool:
        if not self.checks:
            return True
        results = (check(template.render(ex)) for template, check in self.checks)
        return all(results) if self.all else any(results)
