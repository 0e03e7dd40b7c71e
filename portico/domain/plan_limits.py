"""A plan's limits, read from the actions of its rate-limit and quota policies, and the
counter keys the gateway and the usage endpoints share.

Rate limit: ``throttle`` actions of the plan's first policy (the lowest limit applies).
Quota: a ``throttle`` action of the quota policy (blocks when used up) or a ``monitorSLA``
action (only notifies) whose ``value`` carries ``extendedProperties`` ``quota`` and
``notifyPercent``. Both count per application across every API of the package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portico.domain.package import Plan, Subscription
from portico.domain.policy import Policy, PolicyAction
from portico.policies._limits import Limit
from portico.policies.base import ConfigError, validate_parameters
from portico.policies.throttle import Throttle, ThrottleConfig


@dataclass(frozen=True, slots=True)
class PlanLimits:
    rate: Limit | None = None
    quota: Limit | None = None
    quota_blocks: bool = True
    notify_percent: int | None = None


def _throttle_limit(action: PolicyAction, name: str) -> Limit | None:
    try:
        config = validate_parameters(Throttle, action.parameters)
    except ConfigError:
        return None
    assert isinstance(config, ThrottleConfig)
    rule = config.throttleRule
    count = rule.value if rule.monitorRuleOperator == "GT" else rule.value - 1
    return Limit(name, max(count, 0), config.alertInterval, config.alertIntervalUnit)


def _first(params: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((p for p in params if isinstance(p, dict) and p.get("templateKey") == key), None)


def _value(param: dict[str, Any] | None) -> str | None:
    values = param.get("values") if param else None
    return str(values[0]) if isinstance(values, list) and values else None


def _sla_value(parameters: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """monitorSLA's ``monitorRules.value`` parameter and its extendedProperties as a dict."""
    rules = _first(parameters, "monitorRules")
    inner = rules.get("parameters", []) if rules else []
    value = _first(inner, "value")
    raw = (value or {}).get("extendedProperties", [])
    props: dict[str, Any] = {str(p.get("key")): p.get("value") for p in (raw if isinstance(raw, list) else [])
                             if isinstance(p, dict)}
    return value, props


def _whole(text: Any) -> int:
    number = float(str(text))
    if number != int(number):
        raise ValueError(f"{text!r} is not a whole number")
    return int(number)


def sla_quota_problem(parameters: list[dict[str, Any]]) -> str | None:
    """What is wrong with a monitorSLA action's quota extendedProperties (None: nothing), so the
    management API refuses what the gateway could not enforce (a quota it would silently drop)."""
    _, props = _sla_value(parameters)
    if props.get("quota") is not None:
        try:
            if _whole(props["quota"]) < 0:
                return "extendedProperties 'quota' must not be negative"
        except (ValueError, OverflowError):
            return f"extendedProperties 'quota' must be a whole number, got {props['quota']!r}"
        interval = _value(_first(parameters, "alertInterval"))
        try:
            _whole(interval or "1")
        except (ValueError, OverflowError):
            return f"parameter 'alertInterval' of a quota must be a whole number, got {interval!r}"
    if props.get("notifyPercent") is not None:
        try:
            percent = float(str(props["notifyPercent"]))
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            return f"extendedProperties 'notifyPercent' must be a number from 1 to 100, got {props['notifyPercent']!r}"
    return None


def _sla_quota(action: PolicyAction) -> tuple[Limit, int | None] | None:
    """monitorSLA quota: ``monitorRules.value`` with extendedProperties quota / notifyPercent."""
    value, props = _sla_value(action.parameters)
    try:
        quota = _whole(props.get("quota") or _value(value) or "")
        interval = _whole(_value(_first(action.parameters, "alertInterval")) or "1")
        unit = _value(_first(action.parameters, "alertIntervalUnit")) or "minutes"
        notify = int(float(str(props["notifyPercent"]))) if props.get("notifyPercent") else None
    except (ValueError, OverflowError):
        return None
    return Limit("quota", max(quota, 0), max(interval, 1), unit), notify


def _stage_actions(policy: Policy | None, actions: dict[str, PolicyAction]) -> list[PolicyAction]:
    if policy is None:
        return []
    return [actions[i] for i in policy.action_ids() if i in actions]


def plan_limits(plan: Plan, policies: dict[str, Policy], actions: dict[str, PolicyAction]) -> PlanLimits:
    rates = [
        limit for a in _stage_actions(policies.get(plan.rate_policy_id or ""), actions)
        if a.templateKey == "throttle" and (limit := _throttle_limit(a, "rate limit")) is not None
    ]
    rate = min(rates, key=lambda r: r.count) if rates else None
    for action in _stage_actions(policies.get(plan.quota_policy_id or ""), actions):
        if action.templateKey == "throttle":
            quota = _throttle_limit(action, "quota")
            if quota is not None:
                return PlanLimits(rate, quota, True, None)
        if action.templateKey == "monitorSLA":
            found = _sla_quota(action)
            if found is not None:
                return PlanLimits(rate, found[0], False, found[1])
    return PlanLimits(rate)


QUOTA_PREFIX = "q:"


def quota_key(sub: Subscription) -> str:
    return f"{QUOTA_PREFIX}{sub.applicationId}:{sub.quotaEpoch}"


def rate_key(sub: Subscription) -> str:
    return f"pr:{sub.applicationId}:{sub.quotaEpoch}"
