"""Team work: which APIs, applications, packages and plans a caller may see and manage.

THE visibility rule lives here, and the asset modules (``apis.py``, ``applications.py``,
``packages.py``, ``subscriptions.py``) only call it:

* with the extended setting ``enableTeamWork`` false (the default), every asset is visible and
  functional privileges alone decide (team assignments are kept, not consulted);
* with it true, an asset is visible to members of one of its teams (members of ``Administrators``
  and ``API-Gateway-Administrators`` see all); an invisible asset answers 404 like an unknown id and
  is left out of lists;
* managing a visible asset needs the route's functional privilege, held through any of the caller's
  teams: the guide's scenario 2 ("the user retains the functional privileges assigned through the
  first team"), so privileges are the union over all the caller's teams, and :func:`may_manage` is
  visibility plus that privilege (the route table already checked the privilege itself).

The guide's exceptions (applications registered to a visible API are listed by name and can be
unregistered; aliases, global policies, scopes, users, groups and teams are visible to all) are
applied by the callers named in their docstrings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request

from portico.admin.config_store import extended_setting
from portico.admin.errors import ApiError, not_found
from portico.domain import teams as dt
from portico.security.principal import TEAM, Principal
from portico.store import StoreTransaction
from portico.store.db import AssetRow

SETTING = "enableTeamWork"
RULE = "rule"
T = TypeVar("T")


# -- the rule -------------------------------------------------------------------------------------


def _body(asset: Any) -> dict[str, Any]:
    if isinstance(asset, dict):
        return asset
    if isinstance(asset, AssetRow):
        return asset.body
    return {"teams": getattr(asset, "teams", None)}


def visible(principal: Principal | None, asset: Any, enabled: bool) -> bool:
    """Whether ``principal`` may see ``asset`` (a body dict, a store row or an asset model)."""
    if not enabled or principal is None:
        return True
    return dt.holds(principal.teams, _body(asset))


def may_manage(principal: Principal | None, asset: Any, enabled: bool, privilege: str) -> bool:
    """Visible, and the privilege held through any of the caller's teams (union; guide scenario 2)."""
    if principal is None:
        return True
    return visible(principal, asset, enabled) and principal.holds(privilege)


async def team_work_enabled(tx: StoreTransaction) -> bool:
    return (await extended_setting(tx, SETTING)).strip().lower() == "true"


def principal_of(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


async def _enabled(request: Request, tx: StoreTransaction) -> bool:
    cached = getattr(request.state, "team_work", None)
    if cached is None:
        cached = await team_work_enabled(tx)
        request.state.team_work = cached
    return bool(cached)


# -- what the asset modules call ------------------------------------------------------------------


async def is_visible(request: Request, tx: StoreTransaction, asset: Any) -> bool:
    return visible(principal_of(request), asset, await _enabled(request, tx))


async def require_visible(request: Request, tx: StoreTransaction, asset: Any, what: str, ident: str) -> None:
    """404 (as for an unknown id) when the caller may not see the asset."""
    if not await is_visible(request, tx, asset):
        raise not_found(what, ident)


async def only_visible(request: Request, tx: StoreTransaction, assets: Sequence[T]) -> list[T]:
    """The assets of a list the caller may see, in order."""
    enabled, principal = await _enabled(request, tx), principal_of(request)
    if not enabled or principal is None:
        return list(assets)
    return [a for a in assets if visible(principal, a, enabled)]


async def require_visible_ids(request: Request, tx: StoreTransaction, kind: str, ids: Iterable[str],
                              field: str) -> None:
    """A request that references assets by id (``apiIds``, ``planIds``): unknown or invisible -> 400."""
    label = {"api": "API", "plan": "plan", "package": "package", "application": "application"}[kind]
    for ident in ids:
        row = await tx.get(kind, ident)
        if row is None or not await is_visible(request, tx, row):
            raise ApiError(400, f"unknown {label} id {ident!r} in '{field}'")


# -- teams of a new asset -------------------------------------------------------------------------


def team_refs(value: Any, field: str = "teams") -> list[str]:
    """Team references from the wire: a list of ids/names, or a comma-separated string (multipart forms)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    raise ApiError(400, f"field '{field}' must be a list of team ids or names")


async def resolve_teams(tx: StoreTransaction, refs: Iterable[str], field: str = "teams") -> list[str]:
    """Team ids for references by id or by name (case-insensitive); an unknown one -> 400."""
    refs = list(refs)
    if not refs:
        return []
    rows = await tx.list(TEAM)
    by_id = {r.id: r.id for r in rows}
    by_name = {str(r.body.get("name", "")).lower(): r.id for r in rows}
    out: list[str] = []
    for ref in refs:
        team = by_id.get(ref) or by_name.get(ref.lower())
        if team is None:
            raise ApiError(400, f"unknown team {ref!r} in '{field}'")
        out.append(team)
    return list(dict.fromkeys(out))


async def team_names(tx: StoreTransaction, team_ids: Iterable[str]) -> list[str]:
    names = {r.id: str(r.body.get("name", r.id)) for r in await tx.list(TEAM)}
    return [names.get(i, i) for i in team_ids]


async def check_membership(tx: StoreTransaction, principal: Principal | None, team_ids: Iterable[str],
                           field: str = "teams") -> None:
    """A caller can assign only teams they are a member of, unless they see all assets."""
    if principal is None or dt.sees_all(principal.teams):
        return
    foreign = [t for t in team_ids if t not in principal.teams]
    if foreign:
        raise ApiError(403, f"field '{field}': you are not a member of team(s) {await team_names(tx, foreign)}; "
                            "you can assign only your own teams")


async def active_rules(tx: StoreTransaction) -> list[dt.TeamRule]:
    rules = [dt.TeamRule.model_validate(r.body) for r in await tx.list(RULE)]
    return [r for r in rules if r.active]


async def teams_for_new(request: Request, tx: StoreTransaction, kind: str, body: dict[str, Any],
                        requested: Any) -> list[str]:
    """The ``teams`` of an asset being created (``body`` is its wire body, for the rules).

    Requested teams must exist and be the caller's own; ``Administrators`` is always added, and so
    are the teams of active assignment rules that match. With team work on and no team requested,
    the asset goes to the caller's teams (other than ``Default``), so its creator keeps seeing it.
    With team work off and none requested it stays unassigned (``Default`` once the feature is on)."""
    principal = principal_of(request)
    chosen = await resolve_teams(tx, team_refs(requested))
    await check_membership(tx, principal, chosen)
    from_rules = list(dt.rule_teams(await active_rules(tx), kind, body))
    if not chosen and await _enabled(request, tx):
        if principal is None or dt.sees_all(principal.teams):
            return dt.with_administrators(from_rules)
        chosen = sorted(principal.teams - {dt.DEFAULT}) or [dt.DEFAULT]
    if not chosen and not from_rules:
        return []
    base = chosen or dt.asset_teams({})
    return dt.with_administrators([*base, *from_rules])


async def teams_after_update(tx: StoreTransaction, kind: str, body: dict[str, Any], current: list[str]) -> list[str]:
    """The ``teams`` of an asset whose name, description or tags may have changed (``body`` is its new
    wire body): the active assignment rules it now matches add their teams, as on creation and on
    rule activation; nothing is taken away."""
    added = [t for t in dt.rule_teams(await active_rules(tx), kind, body) if t not in current]
    if not added:
        return list(current)
    return dt.with_administrators([*dt.asset_teams({"teams": current}), *added])


# -- writing an asset's body back ------------------------------------------------------------------


async def save_body(tx: StoreTransaction, kind: str, row: AssetRow, body: dict[str, Any]) -> None:
    """Update an asset row keeping the name/version columns its module maintains."""
    name_key, version_key = dt.ASSET_KINDS[kind]
    name = body.get(name_key)
    version = body.get(version_key) if version_key else None
    await tx.update(kind, row.id, body, row.revision, name=name if isinstance(name, str) else None,
                    version=version if isinstance(version, str) else None)


async def list_visible(request: Request, tx: StoreTransaction, kind: str, ids: Iterable[str] | None = None,
                       offset: int = 0, limit: int | None = None) -> list[AssetRow]:
    """``tx.list`` of the visible assets: paging counts visible assets only."""
    if not await _enabled(request, tx) or principal_of(request) is None:
        return await tx.list(kind, ids=ids, offset=offset, limit=limit)
    rows = await only_visible(request, tx, await tx.list(kind, ids=ids))
    return rows[offset:] if limit is None else rows[offset:offset + limit]


async def on_team_work_enabled(tx: StoreTransaction) -> int:
    """``enableTeamWork`` was set to true: every asset not assigned to a team yet goes to ``Default`` (and
    ``Administrators``), as the guide says of existing assets. Returns how many were assigned."""
    assigned = 0
    for kind in dt.ASSET_KINDS:
        for row in await tx.list(kind):
            if not row.body.get("teams"):
                await save_body(tx, kind, row, {**row.body, "teams": dt.asset_teams({})})
                assigned += 1
    return assigned


def policy_ids(kind: str, body: dict[str, Any]) -> list[str]:
    """The policies an API, package or plan body owns (an API's own and resource ones, a package's IAM
    policy, a plan's rate limit and quota)."""
    if kind == "package":
        found = body.get("policyIds")
    elif kind == "plan":
        quota = body.get("quota")
        found = [*(body.get("policies") or []), *(quota.values() if isinstance(quota, dict) else [])]
    else:
        found = body.get("policies")
    return [i for i in found if isinstance(i, str)] if isinstance(found, list) else []


async def hidden_policies(request: Request, tx: StoreTransaction) -> frozenset[str]:
    """Ids of the policies that belong only to assets the caller cannot see (an API's own policy, a
    package's or a plan's): they answer 404 like their asset. Global policies are visible to all."""
    if not await _enabled(request, tx) or principal_of(request) is None:
        return frozenset()
    owned: set[str] = set()
    seen: set[str] = set()
    for kind in ("api", "package", "plan"):
        for row in await tx.list(kind):
            ids = policy_ids(kind, row.body)
            owned.update(ids)
            if await is_visible(request, tx, row):
                seen.update(ids)
    return frozenset(owned - seen)
