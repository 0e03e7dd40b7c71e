"""Team assignment rule matching, an asset's teams, and who approves for a team."""

from __future__ import annotations

from typing import Any

import pytest

from portico.domain import teams as dt


def _rule(contexts: list[str], expressions: list[dict[str, str]], operator: str = "AND",
          active: bool = True) -> dt.TeamRule:
    return dt.TeamRule.model_validate({"id": "r", "name": "rule", "attributeContexts": contexts,
                                       "ruleLogicalOperator": operator, "ruleExpressions": expressions,
                                       "teamsAssigned": ["T"], "active": active})


API = {"apiName": "PetStore", "apiDescription": "Animals for sale", "tags": ["public", "retail"]}
APP = {"name": "pet-client", "description": "mobile app", "tags": ["retail"]}


@pytest.mark.parametrize("kind, body, expressions, operator, expected", [
    ("api", API, [], "AND", True),                                   # no condition: every asset of the kinds
    ("application", APP, [], "AND", False),                          # ... of the rule's kinds only
    ("api", API, [{"attributeName": "name", "operator": "equals", "attributeValue": "petstore"}], "AND", True),
    ("api", API, [{"attributeName": "name", "operator": "equals", "attributeValue": "pet"}], "AND", False),
    ("api", API, [{"attributeName": "name", "operator": "startsWith", "attributeValue": "Pet"}], "AND", True),
    ("api", API, [{"attributeName": "name", "operator": "endsWith", "attributeValue": "store"}], "AND", True),
    ("api", API, [{"attributeName": "description", "operator": "contains", "attributeValue": "for"}], "AND",
     True),
    ("api", API, [{"attributeName": "tags", "operator": "equals", "attributeValue": "retail"}], "AND", True),
    ("api", API, [{"attributeName": "tags", "operator": "equals", "attributeValue": "internal"}], "AND", False),
    ("api", API, [{"attributeName": "name", "operator": "startsWith", "attributeValue": "Pet"},
                  {"attributeName": "description", "operator": "contains", "attributeValue": "cars"}], "AND", False),
    ("api", API, [{"attributeName": "name", "operator": "startsWith", "attributeValue": "Pet"},
                  {"attributeName": "description", "operator": "contains", "attributeValue": "cars"}], "OR", True),
    ("api", API, [{"attributeName": "name", "operator": "startsWith", "attributeValue": "Car"},
                  {"attributeName": "description", "operator": "contains", "attributeValue": "cars"}], "OR", False),
])
def test_rule_matches(kind: str, body: dict[str, Any], expressions: list[dict[str, str]], operator: str,
                      expected: bool) -> None:
    assert dt.rule_matches(_rule(["api"], expressions, operator), kind, body) is expected


def test_tag_conditions_apply_to_apis_only() -> None:
    tag = {"attributeName": "tags", "operator": "equals", "attributeValue": "retail"}
    name = {"attributeName": "name", "operator": "contains", "attributeValue": "pet"}
    rule = _rule(["api", "application"], [tag, name])
    assert dt.rule_matches(rule, "application", APP)               # the tag condition is left out
    assert dt.rule_matches(rule, "api", API)
    assert not dt.rule_matches(_rule(["application"], [tag]), "application", APP)   # nothing left to match


def test_only_active_rules_assign_teams() -> None:
    rules = [_rule(["api"], [], active=False), _rule(["api"], [])]
    assigned = dt.rule_teams(rules, "api", API)
    assert list(assigned) == ["T"] and assigned["T"].active
    assert dt.rule_teams(rules[:1], "api", API) == {}


def test_asset_teams_and_visibility() -> None:
    assert dt.asset_teams({}) == [dt.ADMINISTRATORS, dt.DEFAULT]
    assert dt.asset_teams({"teams": []}) == [dt.ADMINISTRATORS, dt.DEFAULT]
    assert dt.asset_teams({"teams": ["Administrators", "A"]}) == ["Administrators", "A"]
    assert dt.holds({"Default"}, {})
    assert not dt.holds({"Default", "B"}, {"teams": ["Administrators", "A"]})
    assert dt.holds({"Default", "A"}, {"teams": ["Administrators", "A"]})
    assert dt.holds({"API-Gateway-Administrators"}, {"teams": ["Administrators", "A"]})
    assert dt.with_administrators(["A", "Administrators", "A"]) == ["Administrators", "A"]


def test_approvers_include_team_administrators_when_asked() -> None:
    team = dt.Team(id="t", name="t", teamAdmin=dt.Members(userIds=["lead"], groupIds=["leads"]),
                   teamApprovers=dt.Members(userIds=["approver"]))
    assert team.approvers().userIds == ["approver"] and team.approvers().groupIds == []
    team.includeTeamAdminsAsApprovers = True
    assert team.approvers().userIds == ["approver", "lead"] and team.approvers().groupIds == ["leads"]
    assert team.teamAdmin.includes("someone", ["leads"]) and not team.teamAdmin.includes("someone", ["x"])
