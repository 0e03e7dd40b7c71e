"""What a successful management write is, for the audit log: ``(object type, action)`` per route.

:data:`ROUTE_ACTIONS` is the one table, keyed like :mod:`portico.admin.access` by ``(METHOD, route
path)``. A write route missing from it is still recorded: :func:`describe` derives the object type
from the path's first segment (:data:`SEGMENT_TYPES`) and the action from the method, or from a
trailing ``/activate`` / ``/deactivate``. Routes in :data:`NOT_AUDITED` are reads sent as POST, or
writes whose handler records its own entries (logins)."""

from __future__ import annotations

Described = tuple[str, str]

CREATE, UPDATE, DELETE = "Create", "Update", "Delete"
ACTIVATE, DEACTIVATE = "Activate", "Deactivate"

_METHOD_ACTIONS = {"POST": CREATE, "PUT": UPDATE, "PATCH": UPDATE, "DELETE": DELETE}
_VERBS = {"activate": ACTIVATE, "deactivate": DEACTIVATE}

# First path segment -> object type (see portico.audit.areas for the area of each type).
SEGMENT_TYPES: dict[str, str] = {
    "apis": "API",
    "applications": "Application",
    "alias": "Alias",
    "policies": "Policy",
    "policyActions": "PolicyAction",
    "packages": "Package",
    "plans": "Plan",
    "subscriptions": "Subscription",
    "users": "User",
    "groups": "Group",
    "accessProfiles": "AccessProfile",
    "assets": "AccessProfile",
    "is": "User",
    "rule": "TeamAssignmentRule",
    "approvals": "Approval",
    "stages": "Stage",
    "promotion": "Promotion",
    "rollback": "Promotion",
    "apitransactions": "RuntimeData",
    "configurations": "AdministratorSetting",
    "serviceResultCache": "ServiceResultCache",
    "integrations": "Integration",
    "strategies": "Application",  # application strategies (issue 5)
    "oauthTokens": "AccessToken",  # the local authorization server's OAuth tokens (issue 5)
    "scopes": "Alias",  # OAuth scope mappings (issue 5): filed with the authorization servers
}


def _crud(collection: str, item: str, object_type: str) -> dict[tuple[str, str], Described]:
    return {("POST", collection): (object_type, CREATE), ("PUT", item): (object_type, UPDATE),
            ("DELETE", item): (object_type, DELETE)}


def _switch(item: str, object_type: str) -> dict[tuple[str, str], Described]:
    return {("PUT", f"{item}/activate"): (object_type, ACTIVATE),
            ("PUT", f"{item}/deactivate"): (object_type, DEACTIVATE)}


ROUTE_ACTIONS: dict[tuple[str, str], Described] = {
    # API management
    **_crud("/apis", "/apis/{apiId}", "API"),
    **_switch("/apis/{apiId}", "API"),
    ("DELETE", "/apis"): ("API", DELETE),
    ("POST", "/apis/{apiId}/versions"): ("API", "Create version"),
    ("PUT", "/apis/{apiId}/mock/enable"): ("API", "Enable mocking"),
    ("PUT", "/apis/{apiId}/mock/disable"): ("API", "Disable mocking"),
    # application management
    **_crud("/applications", "/applications/{applicationId}", "Application"),
    ("DELETE", "/applications"): ("Application", DELETE),
    ("PATCH", "/applications/{applicationId}"): ("Application", UPDATE),
    ("PUT", "/applications/accessTokens"): ("Application", "Update access tokens"),
    ("POST", "/applications/{applicationId}/accessTokens"): ("Application", "Regenerate access token"),
    ("POST", "/applications/{applicationId}/apis"): ("Application", "Register APIs"),
    ("PUT", "/applications/{applicationId}/apis"): ("Application", "Register APIs"),
    ("POST", "/subscriptions"): ("Subscription", CREATE),
    ("PUT", "/subscriptions/{applicationId}"): ("Subscription", UPDATE),
    ("DELETE", "/subscriptions/{applicationId}"): ("Subscription", DELETE),
    # alias, policy, package and plan management
    **_crud("/alias", "/alias/{aliasId}", "Alias"),
    **_crud("/policies", "/policies/{policyId}", "Policy"),
    **_switch("/policies/{policyId}", "Policy"),
    **_crud("/policyActions", "/policyActions/{policyActionId}", "PolicyAction"),
    **_crud("/packages", "/packages/{packageId}", "Package"),
    **_switch("/packages/{packageId}", "Package"),
    **_crud("/plans", "/plans/{planId}", "Plan"),
    # user, group and team management
    **_crud("/users", "/users/{userId}", "User"),
    ("POST", "/users/{userId}/tokens"): ("AccessToken", CREATE),
    ("DELETE", "/users/{userId}/tokens/{tokenId}"): ("AccessToken", "Revoke"),
    **_crud("/groups", "/groups/{groupId}", "Group"),
    **_crud("/accessProfiles", "/accessProfiles/{accessProfileId}", "AccessProfile"),
    ("POST", "/assets/team"): ("AccessProfile", "Change teams"),
    ("POST", "/assets/owner"): ("AccessProfile", "Change owner"),
    **_crud("/rule", "/rule/{ruleId}", "TeamAssignmentRule"),
    **_switch("/rule/{ruleId}", "TeamAssignmentRule"),
    ("POST", "/is/lockedAccounts"): ("User", "Unlock"),
    # federation (issue 6): integrations with other gateways, ingestion creates APIs
    ("POST", "/integrations/{integrationId}/ingest"): ("Integration", "Ingest"),
    # administration
    ("DELETE", "/apitransactions"): ("RuntimeData", "Purge"),
    ("DELETE", "/serviceResultCache"): ("ServiceResultCache", DELETE),
    ("DELETE", "/serviceResultCache/{apiId}"): ("ServiceResultCache", DELETE),
}

NOT_AUDITED: frozenset[tuple[str, str]] = frozenset({
    ("POST", "/search"),
    ("POST", "/search/_count"),
    ("POST", "/search/_aggregations"),
    ("POST", "/users/authenticate"),  # logins are recorded by the authentication itself
    ("POST", "/authenticate"),
    ("POST", "/integrations/{integrationId}/discover"),  # a preview: nothing changes
    ("POST", "/integrations/{integrationId}/relay"),  # audited where the user's request came in
})


def describe(method: str, route_path: str) -> Described | None:
    """``(object type, action)`` of a successful ``method`` on ``route_path``; None when not audited."""
    key = (method, route_path)
    if key in NOT_AUDITED or method not in _METHOD_ACTIONS:
        return None
    known = ROUTE_ACTIONS.get(key)
    if known is not None:
        return known
    literals = [s for s in route_path.strip("/").split("/") if s and not s.startswith("{")]
    object_type = SEGMENT_TYPES.get(literals[0], "AdministratorSetting") if literals else "AdministratorSetting"
    verb = _VERBS.get(literals[-1]) if len(literals) > 1 else None
    return object_type, verb or _METHOD_ACTIONS[method]
