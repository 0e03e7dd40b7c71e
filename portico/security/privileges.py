"""Functional privileges: the catalogue, its bit-string form, and what the predefined groups hold.

The order of :data:`PRIVILEGES` is the order of the administration guide's "API Gateway Functional
Privileges" table; bit ``i`` of a team's ``privilege`` string is ``PRIVILEGES[i]`` (28 bits)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MANAGE_APIS = "Manage APIs"
ACTIVATE_APIS = "Activate/Deactivate APIs"
MANAGE_APPLICATIONS = "Manage applications"
MANAGE_ALIASES = "Manage aliases"
MANAGE_GLOBAL_POLICIES = "Manage global policies"
ACTIVATE_GLOBAL_POLICIES = "Activate/Deactivate global policies"
MANAGE_POLICY_TEMPLATES = "Manage policy templates"
MANAGE_THREAT_PROTECTION = "Manage threat protection configurations"
PUBLISH_TO_REGISTRY = "Publish API to service registry"
MANAGE_PACKAGES = "Manage packages and plans"
ACTIVATE_PACKAGES = "Activate/Deactivate packages"
PUBLISH_TO_PORTAL = "Publish to Developer Portal"
VIEW_ADMIN_CONFIG = "View administration configurations"
MANAGE_GENERAL_CONFIG = "Manage general administration configurations"
MANAGE_SECURITY_CONFIG = "Manage security configurations"
EXECUTE_CACHE_APIS = "Execute service result cache APIs"
MANAGE_DESTINATIONS = "Manage destination configurations"
MANAGE_SYSTEM_SETTINGS = "Manage system settings"
MANAGE_USERS = "Manage user administration"
MANAGE_PROMOTIONS = "Manage promotions"
MANAGE_REGISTRIES = "Manage service registries"
CHANGE_OWNERSHIP = "Change ownership/teams"
MANAGE_SCOPES = "Manage scope mapping"
IMPORT_ASSETS = "Import assets"
EXPORT_ASSETS = "Export assets"
MANAGE_EVENT_PURGE = "Manage purge and restore runtime event"
MANAGE_MICROGATEWAYS = "Manage microgateways"
MANAGE_DASHBOARDS = "Manage Custom dashboards"

PRIVILEGES: tuple[str, ...] = (
    MANAGE_APIS, ACTIVATE_APIS, MANAGE_APPLICATIONS, MANAGE_ALIASES, MANAGE_GLOBAL_POLICIES,
    ACTIVATE_GLOBAL_POLICIES, MANAGE_POLICY_TEMPLATES, MANAGE_THREAT_PROTECTION, PUBLISH_TO_REGISTRY,
    MANAGE_PACKAGES, ACTIVATE_PACKAGES, PUBLISH_TO_PORTAL, VIEW_ADMIN_CONFIG, MANAGE_GENERAL_CONFIG,
    MANAGE_SECURITY_CONFIG, EXECUTE_CACHE_APIS, MANAGE_DESTINATIONS, MANAGE_SYSTEM_SETTINGS, MANAGE_USERS,
    MANAGE_PROMOTIONS, MANAGE_REGISTRIES, CHANGE_OWNERSHIP, MANAGE_SCOPES, IMPORT_ASSETS, EXPORT_ASSETS,
    MANAGE_EVENT_PURGE, MANAGE_MICROGATEWAYS, MANAGE_DASHBOARDS,
)
ALL: frozenset[str] = frozenset(PRIVILEGES)
_BY_LOWER = {p.lower().replace(" ", ""): p for p in PRIVILEGES}

# The guide's group table: API providers hold these; gateway administrators hold everything.
PROVIDER: frozenset[str] = frozenset({
    MANAGE_APIS, MANAGE_ALIASES, ACTIVATE_APIS, MANAGE_APPLICATIONS, PUBLISH_TO_REGISTRY, MANAGE_PACKAGES,
    ACTIVATE_PACKAGES, PUBLISH_TO_PORTAL, EXECUTE_CACHE_APIS, MANAGE_PROMOTIONS, IMPORT_ASSETS, EXPORT_ASSETS,
})

ADMINISTRATORS = "Administrators"
GATEWAY_ADMINISTRATORS = "API-Gateway-Administrators"
PROVIDERS = "API-Gateway-Providers"
DEFAULT_TEAM = "Default"

# Predefined groups and the predefined team (access profile) of the same name that gives each its
# privileges. Ids equal names so scripts can rely on them.
PREDEFINED_GROUPS: dict[str, frozenset[str]] = {
    ADMINISTRATORS: ALL,
    GATEWAY_ADMINISTRATORS: ALL,
    PROVIDERS: PROVIDER,
}
PREDEFINED_TEAMS: tuple[str, ...] = (*PREDEFINED_GROUPS, DEFAULT_TEAM)


def canonical(name: str) -> str | None:
    """The catalogue spelling of a privilege name (case and spaces ignored), or None."""
    return _BY_LOWER.get(name.lower().replace(" ", ""))


def to_bits(privileges: Iterable[str]) -> str:
    held = set(privileges)
    return "".join("1" if p in held else "0" for p in PRIVILEGES)


def from_bits(bits: str) -> frozenset[str]:
    return frozenset(p for p, b in zip(PRIVILEGES, bits, strict=False) if b == "1")


def parse(value: Any, field: str = "privilege") -> frozenset[str]:
    """A privilege set from the wire: a bit string of up to 28 ``0``/``1`` or a list of names.

    Raises ValueError naming what is wrong."""
    if isinstance(value, str):
        if len(value) > len(PRIVILEGES) or set(value) - {"0", "1"}:
            raise ValueError(f"{field} must be a string of at most {len(PRIVILEGES)} '0'/'1' characters, "
                             "one per functional privilege, or a list of privilege names")
        return from_bits(value)
    if isinstance(value, list):
        out: set[str] = set()
        for item in value:
            name = canonical(item) if isinstance(item, str) else None
            if name is None:
                raise ValueError(f"{field}: unknown functional privilege {item!r}")
            out.add(name)
        return frozenset(out)
    raise ValueError(f"{field} must be a bit string or a list of privilege names")


def ordered(privileges: Iterable[str]) -> list[str]:
    held = set(privileges)
    return [p for p in PRIVILEGES if p in held]
