"""Teams (access profiles), the assets they hold, and global team assignment rules.

Pure domain logic: no store, no HTTP. An asset's ``teams`` lists team ids; an asset created while
team work was off and never assigned has none and counts as ``Administrators`` + ``Default``
(what the guide says existing assets get when the feature is enabled)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from portico.security import privileges as priv

ADMINISTRATORS = priv.ADMINISTRATORS
DEFAULT = priv.DEFAULT_TEAM
# Members of these teams see every asset: every asset is in Administrators, and in the reference the
# API-Gateway-Administrators group is a member of the Administrators team.
SEES_ALL = frozenset({priv.ADMINISTRATORS, priv.GATEWAY_ADMINISTRATORS})

# Asset kinds that belong to teams, with the body fields the store's name/version columns mirror.
ASSET_KINDS: dict[str, tuple[str, str | None]] = {
    "api": ("apiName", "apiVersion"),
    "application": ("name", "version"),
    "package": ("name", None),
    "plan": ("name", None),
}
# The reference's assetType / attributeContexts spellings -> our kinds.
KIND_NAMES = {"api": "api", "apis": "api", "application": "application", "applications": "application",
              "package": "package", "packages": "package", "plan": "plan", "plans": "plan"}


class Members(BaseModel):
    """``teamAdmin`` / ``teamApprovers``: users and groups, by id."""

    model_config = ConfigDict(extra="ignore")

    userIds: list[str] = Field(default_factory=list)
    groupIds: list[str] = Field(default_factory=list)

    def includes(self, user_id: str, groups: Iterable[str]) -> bool:
        return user_id in self.userIds or bool(set(self.groupIds) & set(groups))


class Team(BaseModel):
    """Stored under kind ``accessProfile``; ``privilege`` is the 28-bit string of :mod:`privileges`."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    description: str = ""
    privilege: str = Field(default_factory=lambda: priv.to_bits(()))
    groupIds: list[str] = Field(default_factory=list)
    userIds: list[str] = Field(default_factory=list)
    teamAdmin: Members = Field(default_factory=Members)
    teamApprovers: Members = Field(default_factory=Members)
    includeTeamAdminsAsApprovers: bool = False
    predefined: bool = False

    def approvers(self) -> Members:
        """Who may approve requests concerning this team's assets (for the approvals issue)."""
        if not self.includeTeamAdminsAsApprovers:
            return self.teamApprovers
        return Members(userIds=list(dict.fromkeys([*self.teamApprovers.userIds, *self.teamAdmin.userIds])),
                       groupIds=list(dict.fromkeys([*self.teamApprovers.groupIds, *self.teamAdmin.groupIds])))


def sees_all(teams: Iterable[str]) -> bool:
    return bool(SEES_ALL & set(teams))


def asset_teams(body: dict[str, Any]) -> list[str]:
    """The teams an asset belongs to (never empty: an unassigned asset is in Administrators and Default)."""
    stored = body.get("teams")
    if isinstance(stored, list) and stored:
        return [t for t in stored if isinstance(t, str)]
    return [ADMINISTRATORS, DEFAULT]


def holds(member_teams: Iterable[str], body: dict[str, Any]) -> bool:
    """Whether a user in ``member_teams`` may see the asset (team work enabled)."""
    mine = set(member_teams)
    return sees_all(mine) or bool(mine & set(asset_teams(body)))


def with_administrators(teams: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([ADMINISTRATORS, *teams]))


# -- global team assignment rules ----------------------------------------------------------------

ATTRIBUTES = ("name", "description", "tags")
OPERATORS = ("equals", "contains", "startsWith", "endsWith")
RULE_TYPE = "teamAssignmentRule"


class RuleExpression(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attributeName: Literal["name", "description", "tags"]
    operator: Literal["equals", "contains", "startsWith", "endsWith"]
    attributeValue: str


class TeamRule(BaseModel):
    """Stored under kind ``rule``; ``attributeContexts`` are asset kinds (``api``, ``application``, ...)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    description: str = ""
    ruleType: str = RULE_TYPE
    attributeContexts: list[str] = Field(default_factory=list)
    ruleLogicalOperator: Literal["AND", "OR"] = "AND"
    ruleExpressions: list[RuleExpression] = Field(default_factory=list)
    teamsAssigned: list[str] = Field(default_factory=list)
    owner: str = "Administrator"
    active: bool = False


def _attribute(kind: str, body: dict[str, Any], name: str) -> list[str]:
    if name == "tags":
        tags = body.get("tags")
        return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    key = {"name": ASSET_KINDS[kind][0], "description": "apiDescription" if kind == "api" else "description"}[name]
    value = body.get(key)
    return [value] if isinstance(value, str) else []


def _compare(operator: str, actual: str, expected: str) -> bool:
    # Case-insensitive: names such as "PetStore" and "petstore" are the same asset family to a person.
    a, e = actual.lower(), expected.lower()
    if operator == "equals":
        return a == e
    if operator == "contains":
        return e in a
    if operator == "startsWith":
        return a.startswith(e)
    return a.endswith(e)


def rule_matches(rule: TeamRule, kind: str, body: dict[str, Any]) -> bool:
    """Whether the rule assigns its teams to this asset.

    No conditions: every asset of the rule's kinds. Tag conditions apply to APIs only (the guide:
    "the global team assignment rule supports only API level tags"); for other kinds they are left out,
    and a rule left with no condition by that does not match."""
    if kind not in rule.attributeContexts:
        return False
    conditions = [c for c in rule.ruleExpressions if c.attributeName != "tags" or kind == "api"]
    if not rule.ruleExpressions:
        return True
    if not conditions:
        return False
    results = (any(_compare(c.operator, v, c.attributeValue) for v in _attribute(kind, body, c.attributeName))
               for c in conditions)
    return all(results) if rule.ruleLogicalOperator == "AND" else any(results)


def rule_teams(rules: Iterable[TeamRule], kind: str, body: dict[str, Any]) -> dict[str, TeamRule]:
    """Team id -> the (first) active rule that assigns it to this asset."""
    out: dict[str, TeamRule] = {}
    for rule in rules:
        if rule.active and rule_matches(rule, kind, body):
            for team in rule.teamsAssigned:
                out.setdefault(team, rule)
    return out
