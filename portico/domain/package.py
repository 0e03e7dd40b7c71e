"""Packages (APIs sold together), plans (their limits and terms) and subscriptions.

Stored as asset kinds ``package``, ``plan`` and ``subscription`` (keyed by the subscribed
application's id: one application holds one subscription, as in the reference)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Stage keys of plan policies (the reference's monetization stages), not of API policies.
PLAN_STAGE_KEYS = ("throttle", "monitorSLA")


class Package(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    description: str = ""
    version: str = "1.0"
    icon: str = ""
    apiIds: list[str] = Field(default_factory=list)
    planIds: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    customFields: dict[str, Any] = Field(default_factory=dict)
    active: bool = False
    policyIds: list[str] = Field(default_factory=list)
    publishedPortals: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)  # team ids (admin/teams.py); empty: not assigned yet
    creationDate: int = 0
    modifiedDate: int = 0
    # Set on the package of a federation integration (portico/federation/ingest.py): {integrationId}.
    federation: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)


class Cost(BaseModel):
    model_config = ConfigDict(extra="ignore")

    currency: str | None = None
    value: str | None = None
    duration: str | None = None


class Plan(BaseModel):
    """``policies[0]`` holds the rate-limit actions, ``quota.enforcementPolicy`` the quota's."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    description: str = ""
    version: str = "1.0"
    icon: str = ""
    license: str = ""
    terms: str = ""
    cost: Cost = Field(default_factory=Cost)
    policies: list[str] = Field(default_factory=list)
    quota: dict[str, str] = Field(default_factory=dict)
    customFields: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    deprecated: bool = False
    isProtected: bool = False
    teams: list[str] = Field(default_factory=list)  # team ids (admin/teams.py); empty: not assigned yet
    creationDate: int = 0
    modifiedDate: int = 0
    # Set on plans ingested from another gateway (portico/federation/ingest.py): the provider's plan
    # and its limits, enforced by the provider, not by Portico.
    federation: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)

    @property
    def rate_policy_id(self) -> str | None:
        return self.policies[0] if self.policies else None

    @property
    def quota_policy_id(self) -> str | None:
        return self.quota.get("enforcementPolicy")


class Subscription(BaseModel):
    """``quotaEpoch`` changes when the quota is reset (plan switch): counters are keyed on it."""

    model_config = ConfigDict(extra="ignore")

    applicationId: str
    packageId: str
    planId: str
    createdApplication: bool = True
    created: int = 0
    quotaEpoch: int = 0
