"""The effective policy, table-driven: levels, global filters, exclusive templates, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from portico.domain.api import Api
from portico.domain.effective_policy import effective_policy, global_applies
from portico.domain.policy import Policy, PolicyAction

ACTIONS = {
    i: PolicyAction(id=i, templateKey=t)
    for i, t in [
        ("key", "evaluatePolicy"), ("basic", "evaluatePolicy"), ("route", "straightThroughRouting"),
        ("lb", "loadBalancerRouting"), ("log", "logInvocation"), ("cors", "cors"), ("throttle", "throttle"),
        ("gkey", "evaluatePolicy"), ("gkey2", "evaluatePolicy"), ("glog", "logInvocation"),
    ]
}


def pol(pid: str, level: str = "SERVICE", stages: dict[str, list[str]] | None = None, **extra: Any) -> Policy:
    return Policy.model_validate({
        "id": pid, "policyScope": level,
        "policyEnforcements": [
            {"stageKey": k, "enforcements": [{"enforcementObjectId": a, "order": str(n)} for n, a in enumerate(v)]}
            for k, v in (stages or {}).items()
        ],
        **extra,
    })


SERVICE = pol("svc", stages={"IAM": ["key"], "routing": ["route"], "LMT": ["log"]})
RESOURCE = pol("res", "RESOURCE", {"IAM": ["basic"]}, scope={"resourcePath": "/pets"})
METHOD = pol("met", "METHOD", {"IAM": [], "LMT": ["throttle"]}, scope={"resourcePath": "/pets", "methods": ["POST"]})
API = Api(id="a", apiName="Orders", apiVersion="2.0", apiDescription="order service", tags=["internal"],
          policies=["svc", "res", "met"])
POLICIES = {p.id: p for p in (SERVICE, RESOURCE, METHOD)}


@pytest.mark.parametrize(
    ("resource", "method", "expected"),
    [
        (None, None, {"IAM": ["key"], "routing": ["route"], "LMT": ["log"]}),
        ("/pets", "GET", {"IAM": ["basic"], "routing": ["route"], "LMT": ["log"]}),
        ("/pets", "POST", {"IAM": [], "routing": ["route"], "LMT": ["throttle"]}),
        ("/other", "POST", {"IAM": ["key"], "routing": ["route"], "LMT": ["log"]}),
    ],
)
def test_most_specific_level_wins_per_stage(resource: str | None, method: str | None, expected: Any) -> None:
    assert effective_policy(API, POLICIES, [], ACTIONS, resource, method).stages == expected


def g(pid: str, stages: dict[str, list[str]], conditions: list[Any] | None = None, connector: str = "AND",
      types: list[str] | None = None, active: bool = True) -> Policy:
    scope = {"scopeConditions": conditions or [], "logicalConnector": connector,
             "applicableAPITypes": types or ["REST", "SOAP"]}
    return pol(pid, "GLOBAL", stages, scope=scope, active=active, **{"global": True})


def attr(name: str, op: str, value: str) -> dict[str, Any]:
    return {"filterType": "API", "attributes": [{"attributeName": name, "operation": op, "value": value}]}


METHODS_POST = {"filterType": "HTTP_METHOD", "attributes": [{"attributeName": "POST", "operation": "EQUALS",
                                                            "value": ""}]}


@pytest.mark.parametrize(
    ("policy", "method", "applies"),
    [
        (g("p", {}), None, True),
        (g("p", {}, types=["SOAP"]), None, False),
        (g("p", {}, [attr("API_NAME", "EQUALS", "orders")]), None, True),
        (g("p", {}, [attr("API_NAME", "STARTS_WITH", "Ord")]), None, True),
        (g("p", {}, [attr("API_NAME", "NOT_STARTS_WITH", "Ord")]), None, False),
        (g("p", {}, [attr("API_NAME", "CONTAINS", "der")]), None, True),
        (g("p", {}, [attr("API_NAME", "NOT_CONTAINS", "der")]), None, False),
        (g("p", {}, [attr("API_NAME", "ENDS_WITH", "ers")]), None, True),
        (g("p", {}, [attr("API_NAME", "NOT_EQUALS", "Orders")]), None, False),
        (g("p", {}, [attr("API_VERSION", "GREATER_THAN", "1.5")]), None, True),
        (g("p", {}, [attr("API_VERSION", "LESS_THAN", "1.5")]), None, False),
        (g("p", {}, [attr("API_DESCRIPTION", "CONTAINS", "service")]), None, True),
        (g("p", {}, [attr("API_TAG", "EQUALS", "internal")]), None, True),
        (g("p", {}, [attr("API_TAG", "EQUALS", "external")]), None, False),
        (g("p", {}, [attr("API_NAME", "EQUALS", "x"), attr("API_TAG", "EQUALS", "internal")], "AND"), None, False),
        (g("p", {}, [attr("API_NAME", "EQUALS", "x"), attr("API_TAG", "EQUALS", "internal")], "OR"), None, True),
        (g("p", {}, [METHODS_POST]), "POST", True),
        (g("p", {}, [METHODS_POST]), "GET", False),
        (g("p", {}, [METHODS_POST]), None, True),
    ],
)
def test_global_filters(policy: Policy, method: str | None, applies: bool) -> None:
    assert global_applies(policy, API, method) is applies


def test_global_actions_add_and_replace_exclusive_ones() -> None:
    glob = g("g1", {"IAM": ["gkey"], "LMT": ["glog"]})
    result = effective_policy(API, POLICIES, [glob], ACTIONS)
    assert result.stages == {"IAM": ["gkey"], "routing": ["route"], "LMT": ["log", "glog"]}
    assert result.conflicts == []


def test_inactive_or_inapplicable_globals_are_ignored() -> None:
    off = g("g1", {"IAM": ["gkey"]}, active=False)
    elsewhere = g("g2", {"IAM": ["gkey"]}, [attr("API_NAME", "EQUALS", "Billing")])
    assert effective_policy(API, POLICIES, [off, elsewhere], ACTIONS).stages["IAM"] == ["key"]


def test_two_globals_with_the_same_exclusive_template_conflict() -> None:
    first, second = g("g1", {"IAM": ["gkey"]}), g("g2", {"IAM": ["gkey2"]})
    result = effective_policy(API, POLICIES, [first, second], ACTIONS)
    assert result.stages["IAM"] == ["gkey"]
    assert [(c.template_key, c.kept_policy, c.dropped_policy) for c in result.conflicts] == [
        ("evaluatePolicy", "g1", "g2")]


def test_routing_templates_are_one_family() -> None:
    result = effective_policy(API, POLICIES, [g("g1", {"routing": ["lb"]})], ACTIONS)
    assert result.stages["routing"] == ["lb"]


def test_condition_level_or_and_reference_shapes() -> None:
    either = {"filterType": "API", "logicalConnector": "OR", "attributes": [
        {"attributeName": "API_NAME", "operation": "EQUALS", "value": "Billing"},
        {"attributeName": "API_NAME", "operation": "EQUALS", "value": "Orders"}]}
    assert global_applies(g("p", {}, [either]), API) is True
    method = {"filterType": "HTTP_METHOD", "logicalConnector": "AND", "attributes": [
        {"attributeName": "GET", "operation": "EQUALS", "value": True}]}
    assert global_applies(g("p", {}, [method]), API, "GET") is True


def test_unknown_operations_are_rejected() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        g("p", {}, [attr("API_NAME", "REGEX", "x")])
