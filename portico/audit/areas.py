"""Management areas: how audit entries are grouped, and which of them are recorded.

The areas are those of the administration guide ("API management", "User management", ...); their
keys are the stems of the reference's ``sendAuditlog<Key>Event`` destination flags, so the flag of
an area is ``sendAuditlog{key}Event``. Every object type an audit entry can carry belongs to one
area; a type not listed falls into ``Administration``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portico.store import StoreTransaction

# Area key -> the guide's name for it.
AREAS: dict[str, str] = {
    "APIManagement": "API management",
    "AccessProfileManagement": "Access profile (team) management",
    "AliasManagement": "Alias management",
    "ApplicationManagement": "Application management",
    "ApprovalManagement": "Approval management",
    "GroupManagement": "Group management",
    "PackageManagement": "Package management",
    "PlanManagement": "Plan management",
    "PolicyManagement": "Policy management",
    "PromotionManagement": "Promotion management",
    "RuntimeDataManagement": "Analytics management",
    "UserManagement": "User management",
    "Administration": "Administration",
}
DEFAULT_AREA = "Administration"

# Object type -> area key.
AREA_OF_TYPE: dict[str, str] = {
    "API": "APIManagement",
    "Integration": "APIManagement",
    "AccessProfile": "AccessProfileManagement",
    "Team": "AccessProfileManagement",
    "TeamAssignmentRule": "AccessProfileManagement",
    "Alias": "AliasManagement",
    "Application": "ApplicationManagement",
    "Subscription": "ApplicationManagement",
    "Approval": "ApprovalManagement",
    "Group": "GroupManagement",
    "Package": "PackageManagement",
    "Plan": "PlanManagement",
    "Policy": "PolicyManagement",
    "PolicyAction": "PolicyManagement",
    "Stage": "PromotionManagement",
    "Promotion": "PromotionManagement",
    "RuntimeData": "RuntimeDataManagement",
    "User": "UserManagement",
    "AccessToken": "UserManagement",
    "Login": "UserManagement",
    "AdministratorSetting": "Administration",
    "ServiceResultCache": "Administration",
}

# Where the selection is stored: one settings document, like the other configurations.
CONFIG_KIND = "settings"
CONFIG_ID = "auditlogDestinationConfig"


def area_of(object_type: str) -> str:
    return AREA_OF_TYPE.get(object_type, DEFAULT_AREA)


def flag(area: str) -> str:
    """The reference's destination flag of ``area``: ``sendAuditlogAPIManagementEvent``."""
    return f"sendAuditlog{area}Event"


FLAGS: dict[str, str] = {flag(area): area for area in AREAS}


def enabled_areas(body: Mapping[str, Any] | None) -> frozenset[str]:
    """The areas a stored selection records; every area when nothing is stored (the guide's default)."""
    if not body:
        return frozenset(AREAS)
    return frozenset(area for name, area in FLAGS.items() if body.get(name, True) is not False)


def as_flags(areas: frozenset[str]) -> dict[str, str]:
    """The wire form: every flag, as the strings ``"true"``/``"false"`` the reference uses."""
    return {name: "true" if area in areas else "false" for name, area in FLAGS.items()}


async def load_enabled_areas(tx: StoreTransaction) -> frozenset[str]:
    row = await tx.get(CONFIG_KIND, CONFIG_ID)
    return enabled_areas(row.body if row else None)


async def save_enabled_areas(tx: StoreTransaction, areas: frozenset[str]) -> None:
    await tx.upsert(CONFIG_KIND, CONFIG_ID, {name: area in areas for name, area in FLAGS.items()})
