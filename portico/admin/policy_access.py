"""Who may change which policy: the privilege that matches the policy's kind, and the team rule.

The route table (:mod:`portico.admin.access`) lets in the holders of any privilege a policy route may
need (``access.BY_KIND``); the handlers then call this module, which picks the one that applies:

- a GLOBAL policy (``policyScope`` GLOBAL): "Manage global policies" (activating and deactivating one
  needs "Activate/Deactivate global policies", which the route table asks for itself);
- an API's own policies (SERVICE, RESOURCE, METHOD): "Manage APIs", and the API visible (else 404);
- a package's or a plan's policies: "Manage packages and plans", and the package or plan visible;
- a policy nothing owns (left over): what the route table asked for.

A policy action follows the policies that enforce it: changing it needs the right to change each of
them; reading it needs one of them to be visible (team work hides the policies of invisible assets,
:func:`portico.admin.teams.hidden_policies`). An action no policy uses yet is free to the route's
holders (it is attached with ``PUT /policies/{id}``, which checks the policy)."""

from __future__ import annotations

from starlette.requests import Request

from portico.admin import teams
from portico.admin.errors import ApiError, not_found
from portico.domain.api import Api
from portico.domain.policy import Policy
from portico.security import privileges as p
from portico.store import StoreTransaction
from portico.store.db import AssetRow

# kind of the owning asset -> (privilege, label)
_OWNER_PRIVILEGE = {"api": (p.MANAGE_APIS, "API"), "package": (p.MANAGE_PACKAGES, "package"),
                    "plan": (p.MANAGE_PACKAGES, "plan")}
_NAME_KEY = {"api": "apiName", "package": "name", "plan": "name"}


def _require(request: Request, privilege: str, what: str) -> None:
    principal = teams.principal_of(request)
    if principal is not None and not principal.holds(privilege):
        raise ApiError(403, f"user {principal.login_id!r} lacks the functional privilege '{privilege}' "
                            f"needed to change {what}")


async def owners(tx: StoreTransaction, policy_id: str) -> list[tuple[str, AssetRow]]:
    """The APIs, packages and plans whose policy this is."""
    return [(kind, row) for kind in _OWNER_PRIVILEGE for row in await tx.list(kind)
            if policy_id in teams.policy_ids(kind, row.body)]


async def require_policy_change(request: Request, tx: StoreTransaction, policy: Policy) -> None:
    """403 naming the privilege the policy's kind needs; 404 when it belongs to an invisible asset."""
    if policy.global_ or policy.policyScope == "GLOBAL":
        _require(request, p.MANAGE_GLOBAL_POLICIES, f"global policy {policy.id!r}")
        return
    for kind, row in await owners(tx, policy.id):
        if not await teams.is_visible(request, tx, row):
            raise not_found("policy", policy.id)
        privilege, label = _OWNER_PRIVILEGE[kind]
        _require(request, privilege, f"a policy of {label} {row.body.get(_NAME_KEY[kind], row.id)!r}")


async def require_api_policy_create(request: Request, tx: StoreTransaction, api: Api) -> None:
    """A new RESOURCE/METHOD policy of an API: the API visible (else 404) and "Manage APIs"."""
    await teams.require_visible(request, tx, api, "API", api.id)
    _require(request, p.MANAGE_APIS, f"the policies of API {api.apiName!r}")


def require_global_create(request: Request) -> None:
    _require(request, p.MANAGE_GLOBAL_POLICIES, "global policies")


async def _policies_using(tx: StoreTransaction, action_id: str) -> list[Policy]:
    policies = [Policy.model_validate(r.body) for r in await tx.list("policy")]
    return [pol for pol in policies if action_id in pol.action_ids()]


async def require_action_change(request: Request, tx: StoreTransaction, action_id: str) -> None:
    """Changing or deleting a policy action: the right to change every policy that enforces it."""
    hidden = await teams.hidden_policies(request, tx)
    using = await _policies_using(tx, action_id)
    if using and all(pol.id in hidden for pol in using):
        raise not_found("policy action", action_id)
    for policy in using:
        await require_policy_change(request, tx, policy)


async def hidden_actions(request: Request, tx: StoreTransaction) -> frozenset[str]:
    """Ids of the policy actions that only hidden policies enforce (404 / left out of lists)."""
    hidden = await teams.hidden_policies(request, tx)
    if not hidden:
        return frozenset()
    policies = [Policy.model_validate(r.body) for r in await tx.list("policy")]
    shown = {a for pol in policies if pol.id not in hidden for a in pol.action_ids()}
    return frozenset(a for pol in policies if pol.id in hidden for a in pol.action_ids()) - shown
