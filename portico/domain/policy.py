"""Policies group policy actions per stage; a policy action is one configured template."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class LocalizedText(BaseModel):
    value: str
    locale: str = "English"


class Enforcement(BaseModel):
    enforcementObjectId: str
    order: str | None = "0"


class StageEnforcements(BaseModel):
    stageKey: str
    enforcements: list[Enforcement] = Field(default_factory=list)


class ScopeAttribute(BaseModel):
    attributeName: Literal["API_NAME", "API_DESCRIPTION", "API_VERSION", "API_TAG", "RESOURCE_OPERATION_TAG",
                           "METHOD_TAG", "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    operation: Literal["EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "NOT_STARTS_WITH",
                       "ENDS_WITH", "LESS_THAN", "GREATER_THAN"] = "EQUALS"
    value: str = ""

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # The reference's own HTTP_METHOD example sends ``"value": true``.
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return value


class ScopeCondition(BaseModel):
    filterType: Literal["API", "HTTP_METHOD"] = "API"
    logicalConnector: Literal["AND", "OR"] = "AND"
    attributes: list[ScopeAttribute] = Field(default_factory=list)


class PolicyScopeFilter(BaseModel):
    """Which APIs (and methods) a global policy applies to; for RESOURCE/METHOD policies of an
    API, ``resourcePath`` and ``methods`` name the resource and methods (a Portico extension)."""

    model_config = ConfigDict(extra="ignore")

    applicableAPITypes: list[str] = Field(default_factory=lambda: ["REST", "SOAP"])
    logicalConnector: Literal["AND", "OR"] = "AND"
    scopeConditions: list[ScopeCondition] = Field(default_factory=list)
    resourcePath: str | None = None
    methods: list[str] = Field(default_factory=list)


class Policy(BaseModel):
    """Stored under kind ``policy``."""

    model_config = ConfigDict(extra="ignore")

    id: str
    names: list[LocalizedText] = Field(default_factory=list)
    descriptions: list[LocalizedText] = Field(default_factory=list)
    scope: PolicyScopeFilter = Field(default_factory=PolicyScopeFilter)
    policyEnforcements: list[StageEnforcements] = Field(default_factory=list)
    policyScope: str = "SERVICE"
    systemPolicy: bool = False
    global_: bool = Field(default=False, alias="global")
    active: bool = False

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def action_ids(self) -> list[str]:
        return [e.enforcementObjectId for s in self.policyEnforcements for e in s.enforcements]


class PolicyAction(BaseModel):
    """Stored under kind ``policyAction``. ``parameters`` keep the reference's nested form."""

    model_config = ConfigDict(extra="ignore")

    id: str
    names: list[LocalizedText] = Field(default_factory=list)
    descriptions: list[LocalizedText] = Field(default_factory=list)
    templateKey: str
    parameters: list[dict[str, Any]] = Field(default_factory=list)
    active: bool = False
