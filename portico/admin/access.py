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
_USERS = (p.MANAGE_USERS,)


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
    ("GET", "/apis/{apiId}/scopes"): AUTHENTICATED,
    ("GET", "/apis/{apiId}/scopes/{scopeName}"): AUTHENTICATED,
    ("GET", "/apis/{apiId}/globalPolicies"): AUTHENTICATED,
    ("PUT", "/apis/{apiId}/mock/enable"): _APIS,
    ("PUT", "/apis/{apiId}/mock/disable"): _APIS,
    # applications
    **_crud("/applications", "/applications/{applicationId}", _APPS),
    ("DELETE", "/applications"): _APPS,
    ("PATCH", "/applications/{applicationId}"): _APPS,
    ("PUT", "/applications/accessTokens"): _APPS,
    ("POST", "/applications/{applicationId}/accessTokens"): _APPS,
    ("GET", "/applications/{applicationId}/accessTokens"): AUTHENTICATED,
    ("GET", "/applications/{applicationId}/apis"): AUTHENTICATED,
    ("POST", "/applications/{applicationId}/apis"): _APPS,
    ("PUT", "/applications/{applicationId}/apis"): _APPS,
    # aliases
    **_crud("/alias", "/alias/{aliasId}", (p.MANAGE_ALIASES,)),
    # policies: an API's policies are part of the API; global ones need their own privilege; a package's
    # or plan's go with packages. These entries are coarse gates (BY_KIND): admin/policy_access.py checks
    # the one privilege the policy at hand needs, and the team rule.
    ("GET", "/policies"): AUTHENTICATED,
    ("POST", "/policies"): (p.MANAGE_GLOBAL_POLICIES, p.MANAGE_APIS),
    ("GET", "/policies/{policyId}"): AUTHENTICATED,
    ("PUT", "/policies/{policyId}"): (p.MANAGE_APIS, p.MANAGE_GLOBAL_POLICIES, p.MANAGE_PACKAGES),
    ("DELETE", "/policies/{policyId}"): (p.MANAGE_GLOBAL_POLICIES, p.MANAGE_APIS, p.MANAGE_PACKAGES),
    ("PUT", "/policies/{policyId}/activate"): (p.ACTIVATE_GLOBAL_POLICIES,),
    ("PUT", "/policies/{policyId}/deactivate"): (p.ACTIVATE_GLOBAL_POLICIES,),
    ("GET", "/policies/{policyId}/apis"): AUTHENTICATED,
    ("GET", "/policies/{policyId}/conflicts"): AUTHENTICATED,
    **_crud("/policyActions", "/policyActions/{policyActionId}",
            (p.MANAGE_APIS, p.MANAGE_GLOBAL_POLICIES, p.MANAGE_PACKAGES)),
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
    # keystores, truststores and the default stores (issue 5): security configurations
    **{("GET", path): (p.VIEW_ADMIN_CONFIG, p.MANAGE_SECURITY_CONFIG)
       for path in ("/is/keystore", "/is/keystore/{keyStoreName}", "/is/truststore", "/is/truststore/{trustStoreName}",
                    "/configurations/keystore")},
    **{(method, path): (p.MANAGE_SECURITY_CONFIG,)
       for method, path in (("POST", "/is/keystore"), ("POST", "/is/keystore/{keyStoreName}"),
                            ("DELETE", "/is/keystore/{keyStoreName}"), ("POST", "/is/truststore"),
                            ("POST", "/is/truststore/{trustStoreName}"), ("DELETE", "/is/truststore/{trustStoreName}"),
                            ("PUT", "/configurations/keystore"))},
    # teams (access profiles), global team assignment rules, asset team/owner changes (admin/access_profiles.py,
    # team_rules.py, team_assets.py). A team's administrators may change its members without "Manage user
    # administration": PUT checks that in the handler.
    ("GET", "/accessProfiles"): AUTHENTICATED,
    ("POST", "/accessProfiles"): (p.MANAGE_USERS,),
    ("GET", "/accessProfiles/{accessProfileId}"): AUTHENTICATED,
    ("PUT", "/accessProfiles/{accessProfileId}"): AUTHENTICATED,
    ("DELETE", "/accessProfiles/{accessProfileId}"): (p.MANAGE_USERS,),
    **_crud("/rule", "/rule/{ruleId}", (p.MANAGE_USERS,)),
    ("PUT", "/rule/{ruleId}/activate"): (p.MANAGE_USERS,),
    ("PUT", "/rule/{ruleId}/deactivate"): (p.MANAGE_USERS,),
    ("POST", "/assets/team"): (p.CHANGE_OWNERSHIP,),
    ("POST", "/assets/owner"): (p.CHANGE_OWNERSHIP,),
    # runtime events (analytics)
    ("GET", "/transactionalEvents/_search"): AUTHENTICATED,
    ("GET", "/transactionalEvents/_count"): AUTHENTICATED,
    # global search (admin/search.py): each search type checks its own privileges (AUDIT_LOG needs a
    # configuration-viewing one; asset types are open to every user and narrowed by teams)
    ("POST", "/search"): AUTHENTICATED,
    ("POST", "/search/_count"): AUTHENTICATED,
    ("GET", "/apitransactions"): (*_VIEW_CONFIG, p.MANAGE_EVENT_PURGE),
    ("DELETE", "/apitransactions"): (p.MANAGE_EVENT_PURGE,),
    ("GET", "/apitransactions/jobs"): (*_VIEW_CONFIG, p.MANAGE_EVENT_PURGE),
    ("GET", "/apitransactions/jobs/{jobId}"): (*_VIEW_CONFIG, p.MANAGE_EVENT_PURGE),
    ("GET", "/configurations/auditlogDestinationConfig"): (*_VIEW_CONFIG, p.MANAGE_DESTINATIONS),
    ("PUT", "/configurations/auditlogDestinationConfig"): (p.MANAGE_DESTINATIONS,),
    # users, groups, login settings, personal access tokens (issue 4 part 1; see SELF_SERVICE)
    ("GET", "/users"): AUTHENTICATED,
    ("POST", "/users"): _USERS,
    ("GET", "/users/{userId}"): AUTHENTICATED,
    ("PUT", "/users/{userId}"): _USERS,
    ("DELETE", "/users/{userId}"): _USERS,
    ("POST", "/users/authenticate"): AUTHENTICATED,
    ("POST", "/authenticate"): AUTHENTICATED,
    ("POST", "/users/logout"): AUTHENTICATED,
    ("GET", "/users/{userId}/tokens"): _USERS,
    ("POST", "/users/{userId}/tokens"): AUTHENTICATED,   # the user themself only (admin/user_tokens.py)
    ("DELETE", "/users/{userId}/tokens/{tokenId}"): _USERS,
    **_crud("/groups", "/groups/{groupId}", _USERS),
    **{(m, f"/configurations/{doc}"): _USERS for m in ("GET", "PUT")
       for doc in ("passwordRestrictions", "passwordExpiry", "accountLockSettings")},
    ("GET", "/is/lockedAccounts"): _USERS,
    ("POST", "/is/lockedAccounts"): _USERS,
    # federation integrations (issue 6, admin/integrations.py): writes, discovery and ingestion manage APIs
    **_crud("/integrations", "/integrations/{integrationId}", _APIS),
    ("POST", "/integrations/{integrationId}/discover"): _APIS,
    ("POST", "/integrations/{integrationId}/ingest"): _APIS,
    ("GET", "/integrations/{integrationId}/ingestJobs/{jobId}"): AUTHENTICATED,
    # between nodes: authenticated by the master key the nodes share (federation/relay.py)
    ("POST", "/integrations/{integrationId}/relay"): PUBLIC,
    # OAuth2/JWT/OpenID (issue 5): application strategies (admin/strategies.py) go with applications;
    # tokens of the local authorization server (admin/oauth_tokens.py) with security configurations.
    # Authorization servers and providers are aliases (/alias); their writes also need
    # "Manage security configurations", checked in admin/auth_servers.py.
    **_crud("/strategies", "/strategies/{strategyId}", _APPS),
    ("PUT", "/strategies/{strategyId}/refreshCredentials"): _APPS,
    ("GET", "/oauthTokens"): (p.VIEW_ADMIN_CONFIG, p.MANAGE_SECURITY_CONFIG),
    ("DELETE", "/oauthTokens/expired"): (p.MANAGE_SECURITY_CONFIG,),
    ("DELETE", "/oauthTokens/{tokenId}"): (p.MANAGE_SECURITY_CONFIG,),
    # scope mappings (admin/scopes.py; visible to all users, as the guide says) and the global IP access
    # setting on failed authentication (admin/ip_deny.py)
    **_crud("/scopes", "/scopes/{oauthScopeId}", (p.MANAGE_SCOPES, p.MANAGE_SECURITY_CONFIG)),
    ("GET", "/configurations/denyByIPForFailedAuthConfig"): (p.VIEW_ADMIN_CONFIG, p.MANAGE_SECURITY_CONFIG),
    ("PUT", "/configurations/denyByIPForFailedAuthConfig"): (p.MANAGE_SECURITY_CONFIG,),
}

# Routes a user may call on their own account (``{userId}`` = their id or login id) without the
# route's privilege: change their own password (with the current one) and details, list and revoke
# their own access tokens (creating one is for the user themself only, whatever they hold).
SELF_SERVICE: frozenset[tuple[str, str]] = frozenset({
    ("PUT", "/users/{userId}"),
    ("GET", "/users/{userId}/tokens"),
    ("DELETE", "/users/{userId}/tokens/{tokenId}"),
})

# Routes whose entry is a coarse gate: the handler checks which one of the listed privileges the
# object at hand needs (admin/policy_access.py: global policies, an API's, a package's or a plan's),
# and answers 403 naming it.
BY_KIND: frozenset[tuple[str, str]] = frozenset({
    ("POST", "/policies"),
    ("PUT", "/policies/{policyId}"),
    ("DELETE", "/policies/{policyId}"),
    ("POST", "/policyActions"),
    ("PUT", "/policyActions/{policyActionId}"),
    ("DELETE", "/policyActions/{policyActionId}"),
})


def required(method: str, path: str) -> tuple[str, ...] | None:
    """What ``method`` on the route ``path`` requires; None when the route is not declared."""
    if method == "HEAD":
        method = "GET"
    return REQUIRED.get((method, path))

