"""The one table of what each management endpoint requires.

Keys are ``(METHOD, route path)`` with the route path as declared (``/apis/{apiId}``). A value is
:data:`PUBLIC` (no credentials), :data:`AUTHENTICATED` (any signed-in user; what they then see is
narrowed by teams), or a tuple of functional privileges of which the caller must hold one.
A route missing from the table is refused with 403 and fails the privilege-matrix test."""

from __future__ import annotations

from portico.security import privileges as p

PUBLIC: tuple[str, ...] = ("<public>",)
AUTHENTICATED: tuple[str, ...] = ()

_APIS = (p.MANAGE_APIS,)
_APPS = (p.MANAGE_APPLICATIONS,)
_PACKAGES = (p.MANAGE_PACKAGES,)
_VIEW_CONFIG = (p.VIEW_ADMIN_CONFIG, p.MANAGE_GENERAL_CONFIG)
_GENERAL = (p.MANAGE_GENERAL_CONFIG,)


def _crud(collection: str, item: str, write: tuple[str, ...], read: tuple[str, ...] = AUTHENTICATED,
          ) -> dict[tuple[str, str], tuple[str, ...]]:
    return {("GET", collection): read, ("POST", collection): write, ("GET", item): read,
            ("PUT", item): write, ("DELETE", item): write}


REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    # health is public, as in the reference
    **{("GET", path): PUBLIC for path in ("/health", "/health/", "/health/all", "/health/engine", "/health/admin")},
    ("GET", "/openapi.json"): PUBLIC,
    # APIs
    **_crud("/apis", "/apis/{apiId}", _APIS),
    ("DELETE", "/apis"): _APIS,
    ("PUT", "/apis/{apiId}/activate"): (p.ACTIVATE_APIS,),
    ("PUT", "/apis/{apiId}/deactivate"): (p.ACTIVATE_APIS,),
    ("GET", "/apis/{apiId}/versions"): AUTHENTICATED,
    ("POST", "/apis/{apiId}/versions"): _APIS,
    ("GET", "/apis/{apiId}/applications"): AUTHENTICATED,
    ("GET", "/apis/{apiId}/source"): AUTHENTICATED,
    ("GET", "/apis/{apiId}/globalPolicies"): AUTHENTICATED,
    ("PUT", "/apis/{apiId}/mock/enable"): _APIS,
    ("PUT", "/apis/{apiId}/mock/disable"): _APIS,
    # applications
    **_crud("/applications", "/applications/{applicationId}", _APPS),
    ("DELETE", "/applications"): _APPS,
    ("PATCH", "/applications/{applicationId}"): _APPS,
    ("PUT", "/applications/accessTokens"): _APPS,
    ("POST", "/applications/{applicationId}/accessTokens"): _APPS,
    ("GET", "/applications/{applicationId}/apis"): AUTHENTICATED,
    ("POST", "/applications/{applicationId}/apis"): _APPS,
    ("PUT", "/applications/{applicationId}/apis"): _APPS,
    # aliases
    **_crud("/alias", "/alias/{aliasId}", (p.MANAGE_ALIASES,)),
    # policies: an API's policies are part of the API; global ones need their own privilege
    ("GET", "/policies"): AUTHENTICATED,
    ("POST", "/policies"): (p.MANAGE_GLOBAL_POLICIES, p.MANAGE_APIS),
    ("GET", "/policies/{policyId}"): AUTHENTICATED,
    ("PUT", "/policies/{policyId}"): (p.MANAGE_APIS, p.MANAGE_GLOBAL_POLICIES),
    ("DELETE", "/policies/{policyId}"): (p.MANAGE_GLOBAL_POLICIES, p.MANAGE_APIS),
    ("PUT", "/policies/{policyId}/activate"): (p.ACTIVATE_GLOBAL_POLICIES,),
    ("PUT", "/policies/{policyId}/deactivate"): (p.ACTIVATE_GLOBAL_POLICIES,),
    ("GET", "/policies/{policyId}/apis"): AUTHENTICATED,
    ("GET", "/policies/{policyId}/conflicts"): AUTHENTICATED,
    **_crud("/policyActions", "/policyActions/{policyActionId}", (p.MANAGE_APIS, p.MANAGE_GLOBAL_POLICIES)),
    ("GET", "/policyStages"): AUTHENTICATED,
    ("GET", "/policyActionTemplates"): AUTHENTICATED,
    ("GET", "/policyActionTemplates/{templateKey}"): AUTHENTICATED,
    # packages, plans, subscriptions
    **_crud("/packages", "/packages/{packageId}", _PACKAGES),
    ("PUT", "/packages/{packageId}/activate"): (p.ACTIVATE_PACKAGES,),
    ("PUT", "/packages/{packageId}/deactivate"): (p.ACTIVATE_PACKAGES,),
    ("GET", "/packages/{packageId}/apis"): AUTHENTICATED,
    ("GET", "/packages/{packageId}/plans"): AUTHENTICATED,
    **_crud("/plans", "/plans/{planId}", _PACKAGES),
    ("POST", "/subscriptions"): _APPS,
    ("GET", "/subscriptions"): AUTHENTICATED,
    ("GET", "/subscriptions/usage"): AUTHENTICATED,
    ("GET", "/subscriptions/{applicationId}"): AUTHENTICATED,
    ("PUT", "/subscriptions/{applicationId}"): _APPS,
    ("DELETE", "/subscriptions/{applicationId}"): _APPS,
    ("GET", "/subscriptions/{applicationId}/usage"): AUTHENTICATED,
    # service result cache
    ("GET", "/serviceResultCache"): (p.EXECUTE_CACHE_APIS,),
    ("DELETE", "/serviceResultCache"): (p.EXECUTE_CACHE_APIS,),
    ("GET", "/serviceResultCache/{apiId}"): (p.EXECUTE_CACHE_APIS,),
    ("DELETE", "/serviceResultCache/{apiId}"): (p.EXECUTE_CACHE_APIS,),
    # administration configurations
    ("GET", "/configurations/settings"): _VIEW_CONFIG,
    ("PUT", "/configurations/settings"): _GENERAL,
    ("GET", "/configurations/errorProcessing"): _VIEW_CONFIG,
    ("PUT", "/configurations/errorProcessing"): _GENERAL,
    ("GET", "/configurations/customContentTypes"): _VIEW_CONFIG,
    ("PUT", "/configurations/customContentTypes"): _GENERAL,
    # runtime events (analytics)
    ("GET", "/transactionalEvents/_search"): AUTHENTICATED,
    ("GET", "/transactionalEvents/_count"): AUTHENTICATED,
    # audit logs (admin/audit.py, search.py). /search answers AUDIT_LOG only so far; each search type
    # also checks its own privileges, so this may become AUTHENTICATED when asset types are added.
    ("POST", "/search"): _VIEW_CONFIG,
    ("POST", "/search/_count"): _VIEW_CONFIG,
    ("GET", "/apitransactions"): (*_VIEW_CONFIG, p.MANAGE_EVENT_PURGE),
    ("GET", "/configurations/auditlogDestinationConfig"): (*_VIEW_CONFIG, p.MANAGE_DESTINATIONS),
    ("PUT", "/configurations/auditlogDestinationConfig"): (p.MANAGE_DESTINATIONS,),
}


def required(method: str, path: str) -> tuple[str, ...] | None:
    """What ``method`` on the route ``path`` requires; None when the route is not declared."""
    if method == "HEAD":
        method = "GET"
    return REQUIRED.get((method, path))

