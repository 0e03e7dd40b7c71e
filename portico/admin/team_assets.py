"""``POST /assets/team`` and ``POST /assets/owner``: change the teams or the owner of assets, one or
many at once (APIGatewayAdministration.json ``ChangeOwnerRequest`` / ``ChangeOwnerResponse``).

Assets are chosen by ``assetType`` (API, APPLICATION, PACKAGE, PLAN or ``*``) and ``assetIds``
and/or ``currentTeams`` (``currentOwner``); when both are given both must hold. Only assets the caller
can see are considered. ``newTeams`` replaces the teams (``Administrators`` always stays); a team
can be added only by its members (unless the caller sees all assets), and a team an active
assignment rule gives an asset cannot be removed (400 naming the rule). Every change passes
:func:`approval_gate` before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object, require_str
from portico.admin.context import AdminContext, context_of
from portico.admin.errors import ApiError
from portico.admin.teams import (
    active_rules,
    check_membership,
    is_visible,
    principal_of,
    resolve_teams,
    save_body,
    team_names,
)
from portico.domain import teams as dt
from portico.security.principal import USER
from portico.store import StoreTransaction
from portico.store.db import AssetRow

_TEAM_TYPES = {"API": ("api",), "APPLICATION": ("application",), "PACKAGE": ("package",), "PLAN": ("plan",),
               "*": tuple(dt.ASSET_KINDS)}
# Packages and plans have no owner field.
_OWNER_TYPES = {"API": ("api",), "APPLICATION": ("application",), "*": ("api", "application")}


@dataclass(frozen=True)
class AssetChange:
    """A validated change of teams or owner: what an approval request would carry."""

    action: Literal["changeTeams", "changeOwner"]
    requested_by: str
    assets: dict[str, list[str]]            # kind -> asset ids
    new_teams: list[str] = field(default_factory=list)
    new_owner: str = ""


async def approval_gate(ctx: AdminContext, tx: StoreTransaction, change: AssetChange) -> str | None:
    """Hook for the approvals issue: does this change wait for an approver?

    Called inside the change's transaction, after validation, before anything is written. Return
    None to apply the change now (what Portico does until approvals exist), or the id of the approval
    request created for it: the handler then answers ``"status": "PENDING_APPROVAL"`` and writes
    nothing, and the approval, once granted, applies the same :class:`AssetChange` with
    :func:`apply_change`. Approvers of a team are ``portico.domain.teams.Team.approvers()``."""
    return None


async def apply_change(tx: StoreTransaction, change: AssetChange) -> None:
    """Write a validated change (now, or when its approval is granted)."""
    for kind, ids in change.assets.items():
        for row in await tx.list(kind, ids=ids):
            if change.action == "changeTeams":
                body = {**row.body, "teams": dt.with_administrators(change.new_teams)}
            else:
                body = {**row.body, "owner": change.new_owner}
            await save_body(tx, kind, row, body)


# -- request parsing -------------------------------------------------------------------------------


def _kinds(data: dict[str, Any], allowed: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    value = data.get("assetType")
    kinds = allowed.get(value.strip().upper()) if isinstance(value, str) else None
    if kinds is None:
        raise ApiError(400, f"field 'assetType' must be one of {list(allowed)}")
    return kinds


def _ids(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ApiError(400, f"field '{key}' must be a list of strings")
    return list(dict.fromkeys(value))


async def _select(request: Request, tx: StoreTransaction, kinds: tuple[str, ...],
                  asset_ids: list[str] | None) -> list[tuple[str, AssetRow]]:
    """The visible assets named by ``assetIds`` (an unknown or invisible one -> 400), or all visible ones."""
    if asset_ids is None:
        return [(k, r) for k in kinds for r in await tx.list(k) if await is_visible(request, tx, r)]
    out = []
    for ident in asset_ids:
        found = None
        for kind in kinds:
            row = await tx.get(kind, ident)
            if row is not None and await is_visible(request, tx, row):
                found = (kind, row)
                break
        if found is None:
            raise ApiError(400, f"field 'assetIds': no {' or '.join(kinds)} with id {ident!r}")
        out.append(found)
    return out


def _grouped(chosen: list[tuple[str, AssetRow]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind, row in chosen:
        out.setdefault(kind, []).append(row.id)
    return out


def _response(status: str, message: str, assets: dict[str, list[str]]) -> Response:
    return json_response({"status": status, "message": message, "matchingAssets": assets})


# -- handlers --------------------------------------------------------------------------------------


async def change_teams(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    kinds = _kinds(data, _TEAM_TYPES)
    asset_ids, current_refs = _ids(data, "assetIds"), _ids(data, "currentTeams")
    new_refs = _ids(data, "newTeams")
    if not new_refs:
        raise ApiError(400, "field 'newTeams' is required: the teams the assets are to belong to")
    if asset_ids is None and current_refs is None:
        raise ApiError(400, "one of 'assetIds' or 'currentTeams' is required to choose the assets")
    principal = principal_of(request)
    async with ctx.store.transaction() as tx:
        new_teams = dt.with_administrators(await resolve_teams(tx, new_refs, "newTeams"))
        current = set(await resolve_teams(tx, current_refs or [], "currentTeams"))
        chosen = [(k, r) for k, r in await _select(request, tx, kinds, asset_ids)
                  if current_refs is None or current & set(dt.asset_teams(r.body))]
        rules = await active_rules(tx)
        for kind, row in chosen:
            had = dt.asset_teams(row.body)
            for team, rule in dt.rule_teams(rules, kind, row.body).items():
                if team in had and team not in new_teams:
                    name = (await team_names(tx, [team]))[0]
                    raise ApiError(400, f"team {name!r} was assigned to {kind} {row.id!r} by team assignment rule "
                                        f"{rule.name!r} and cannot be removed by hand")
            await check_membership(tx, principal, [t for t in new_teams if t not in had], "newTeams")
        change = AssetChange("changeTeams", principal.login_id if principal else "", _grouped(chosen),
                             new_teams=new_teams)
        names = await team_names(tx, new_teams)
        if not chosen:
            return _response("OK", "No asset matched the request; nothing was changed", {})
        pending = await approval_gate(ctx, tx, change)
        if pending is None:
            await apply_change(tx, change)
    if pending is not None:
        return _response("PENDING_APPROVAL", f"The change of teams waits for approval (request {pending})",
                         change.assets)
    ctx.notify_change()
    return _response("OK", f"The assets have been assigned to the following teams : [{', '.join(names)}]",
                     change.assets)


async def _new_owner(tx: StoreTransaction, data: dict[str, Any]) -> str:
    owner = require_str(data, "newOwner")
    owner_type = data.get("ownerType", "user")
    if owner_type not in ("user", "team"):
        raise ApiError(400, "field 'ownerType' must be 'user' or 'team'")
    if owner_type == "team":
        team_id = (await resolve_teams(tx, [owner], "newOwner"))[0]
        return (await team_names(tx, [team_id]))[0]
    row = await tx.get(USER, owner)
    if row is None:
        row = next((r for r in await tx.list(USER) if r.body.get("loginId") == owner), None)
    if row is None:
        raise ApiError(400, f"field 'newOwner': unknown user {owner!r}")
    return str(row.body.get("loginId") or row.id)


async def change_owner(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    kinds = _kinds(data, _OWNER_TYPES)
    asset_ids = _ids(data, "assetIds")
    current_owner = require_str(data, "currentOwner", required=False) or None
    if asset_ids is None and current_owner is None:
        raise ApiError(400, "one of 'assetIds' or 'currentOwner' is required to choose the assets")
    principal = principal_of(request)
    async with ctx.store.transaction() as tx:
        owner = await _new_owner(tx, data)
        chosen = [(k, r) for k, r in await _select(request, tx, kinds, asset_ids)
                  if current_owner is None or r.body.get("owner", "Administrator") == current_owner]
        if not chosen:
            return _response("OK", "No asset matched the request; nothing was changed", {})
        change = AssetChange("changeOwner", principal.login_id if principal else "", _grouped(chosen),
                             new_owner=owner)
        pending = await approval_gate(ctx, tx, change)
        if pending is None:
            await apply_change(tx, change)
    if pending is not None:
        return _response("PENDING_APPROVAL", f"The change of owner waits for approval (request {pending})",
                         change.assets)
    ctx.notify_change()
    return _response("OK", f"Assets have been changed to {owner}", change.assets)


routes = [
    Route("/assets/team", change_teams, methods=["POST"]),
    Route("/assets/owner", change_owner, methods=["POST"]),
]
