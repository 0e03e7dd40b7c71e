"""``/accessProfiles``: teams (APIGatewayUserManagementSwagger.json ``AccessProfile``).

A team holds functional privileges (``privilege``, the 28-bit string; ``privileges``, the names,
accepted and returned too), member groups (``groupIds``) and users (``userIds``, our addition),
team administrators and approvers. Writes need "Manage user administration", except that a team's
administrators (``teamAdmin``, directly or through a group) may change that team's members."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.admin.teams import RULE, principal_of, save_body
from portico.domain import teams as dt
from portico.security import privileges as priv
from portico.security.principal import GROUP, TEAM, USER
from portico.store import ConflictError, StoreTransaction

MEMBER_FIELDS = ("groupIds", "userIds")
# The predefined teams that give their groups every privilege keep it.
FIXED_PRIVILEGES = frozenset({priv.ADMINISTRATORS, priv.GATEWAY_ADMINISTRATORS})
_NAME_CLAIM = "accessProfile_name"


def team_body(team: dt.Team) -> dict[str, Any]:
    held = priv.from_bits(team.privilege)
    return {
        "id": team.id, "name": team.name, "description": team.description,
        "privilege": priv.to_bits(held), "privileges": priv.ordered(held),
        "groupIds": team.groupIds, "userIds": team.userIds,
        "teamAdmin": team.teamAdmin.model_dump(), "teamApprovers": team.teamApprovers.model_dump(),
        "includeTeamAdminsAsApprovers": team.includeTeamAdminsAsApprovers,
        "systemDefined": team.predefined,
    }


def _not_found(team_id: str) -> ApiError:
    return ApiError(404, f"AccessProfile with id: {team_id} does not exist.")


async def load_team(tx: StoreTransaction, team_id: str) -> tuple[dt.Team, int]:
    row = await tx.get(TEAM, team_id)
    if row is None:
        raise _not_found(team_id)
    return _team(row.id, row.body), row.revision


def _team(team_id: str, body: dict[str, Any]) -> dt.Team:
    team = dt.Team.model_validate({"name": team_id, **body, "id": team_id})
    team.privilege = priv.to_bits(priv.from_bits(team.privilege))  # stored strings may be shorter than 28
    return team


# -- parsing ---------------------------------------------------------------------------------------


class _Directory:
    """Users and groups by id, login id or name, loaded once per request."""

    def __init__(self, users: dict[str, str], groups: dict[str, str]) -> None:
        self.users, self.groups = users, groups

    @classmethod
    async def load(cls, tx: StoreTransaction) -> _Directory:
        users: dict[str, str] = {}
        for row in await tx.list(USER):
            users[row.id] = row.id
            login = row.body.get("loginId")
            if isinstance(login, str):
                users.setdefault(login, row.id)
        groups: dict[str, str] = {}
        for row in await tx.list(GROUP):
            groups[row.id] = row.id
            name = row.body.get("name")
            if isinstance(name, str):
                groups.setdefault(name, row.id)
        return cls(users, groups)

    def resolve(self, value: Any, field: str, kind: str, kept: list[str]) -> list[str]:
        """Ids for references by id, login id or name; unknown -> 400, except ids the team already
        lists (a team read and sent back must not fail because a member was deleted meanwhile)."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(400, f"field '{field}' must be a list of {kind} ids")
        index = self.users if kind == "user" else self.groups
        out: list[str] = []
        for ref in value:
            if ref not in index and ref not in kept:
                raise ApiError(400, f"unknown {kind} {ref!r} in '{field}'")
            out.append(index[ref] if ref in index else str(ref))
        return list(dict.fromkeys(out))

    def members(self, value: Any, field: str, kept: dt.Members) -> dt.Members:
        if value is None:
            return dt.Members()
        if not isinstance(value, dict):
            raise ApiError(400, f"field '{field}' must be an object with 'userIds' and 'groupIds'")
        return dt.Members(
            userIds=self.resolve(value.get("userIds", []), f"{field}.userIds", "user", kept.userIds),
            groupIds=self.resolve(value.get("groupIds", []), f"{field}.groupIds", "group", kept.groupIds))


def _privileges(data: dict[str, Any]) -> str | None:
    found: list[frozenset[str]] = []
    for field in ("privilege", "privileges"):
        if field in data and data[field] is not None:
            try:
                found.append(priv.parse(data[field], field))
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
    if len(found) == 2 and found[0] != found[1]:
        raise ApiError(400, "fields 'privilege' and 'privileges' name different functional privileges; send one")
    return priv.to_bits(found[0]) if found else None


def _text(data: dict[str, Any], field: str, limit: int) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
        raise ApiError(400, f"field '{field}' must be a string of at most {limit} printable characters")
    return value


async def _apply(tx: StoreTransaction, team: dt.Team, data: dict[str, Any]) -> dt.Team:
    """A copy of ``team`` with the fields present in ``data`` (absent fields are kept)."""
    out = team.model_copy(deep=True)
    name = _text(data, "name", 255)
    if name is not None:
        if not name.strip():
            raise ApiError(400, "field 'name' must not be empty")
        out.name = name.strip()
    description = _text(data, "description", 4000)
    if description is not None:
        out.description = description
    bits = _privileges(data)
    if bits is not None:
        out.privilege = bits
    directory = await _Directory.load(tx)
    if "groupIds" in data:
        out.groupIds = directory.resolve(data["groupIds"] or [], "groupIds", "group", team.groupIds)
    if "userIds" in data:
        out.userIds = directory.resolve(data["userIds"] or [], "userIds", "user", team.userIds)
    for field in ("teamAdmin", "teamApprovers"):
        if field in data:
            setattr(out, field, directory.members(data[field], field, getattr(team, field)))
    if "includeTeamAdminsAsApprovers" in data:
        flag = data["includeTeamAdminsAsApprovers"]
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if not isinstance(flag, bool):
            raise ApiError(400, "field 'includeTeamAdminsAsApprovers' must be true or false")
        out.includeTeamAdminsAsApprovers = flag
    return out


async def _check_name(tx: StoreTransaction, name: str, own_id: str | None) -> None:
    for row in await tx.list(TEAM):
        if row.id != own_id and str(row.body.get("name", row.id)).lower() == name.lower():
            raise ApiError(409, f"a team named {name!r} already exists")


async def _claim_name(tx: StoreTransaction, team: dt.Team, old_name: str | None) -> None:
    """Reserve the lower-cased name in this transaction, so two concurrent creates cannot both win."""
    if old_name is not None and old_name.lower() == team.name.lower():
        return
    try:
        await tx.insert(_NAME_CLAIM, team.name.lower()[:128], {"teamId": team.id})
    except ConflictError:
        raise ApiError(409, f"a team named {team.name!r} already exists") from None
    if old_name is not None:
        await tx.delete(_NAME_CLAIM, old_name.lower()[:128])


# -- handlers --------------------------------------------------------------------------------------


async def list_teams(request: Request) -> Response:
    """Every team; visible to all signed-in users (the guide's Team Support Considerations)."""
    async with context_of(request).store.read() as tx:
        rows = await tx.list(TEAM)
    teams = [_team(r.id, r.body) for r in rows]
    return json_response({"accessProfiles": [team_body(t) for t in teams]})


async def get_team(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        team, _ = await load_team(tx, request.path_params["accessProfileId"])
    return json_response(team_body(team))


async def create_team(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="accessProfile")
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise ApiError(400, "field 'name' is required")
    async with ctx.store.transaction() as tx:
        team = await _apply(tx, dt.Team(id=str(uuid.uuid4()), name="x"), data)
        await _check_name(tx, team.name, None)
        await _claim_name(tx, team, None)
        await tx.insert(TEAM, team.id, team.model_dump(mode="json"), name=team.name)
    ctx.notify_change()
    return json_response(team_body(team), status=201)


def _check_writer(request: Request, current: dt.Team, updated: dt.Team) -> None:
    principal = principal_of(request)
    if principal is None or principal.holds(priv.MANAGE_USERS):
        return
    if not current.teamAdmin.includes(principal.user_id, principal.groups):
        raise ApiError(403, f"user {principal.login_id!r} lacks the functional privilege "
                            f"'{priv.MANAGE_USERS}' and is not an administrator of team {current.name!r}")
    before = current.model_dump(exclude=set(MEMBER_FIELDS))
    after = updated.model_dump(exclude=set(MEMBER_FIELDS))
    changed = sorted(k for k in before if before[k] != after[k])
    if changed:
        raise ApiError(403, f"team administrators may change only the members ({', '.join(MEMBER_FIELDS)}); "
                            f"changing {changed} needs '{priv.MANAGE_USERS}'")


async def update_team(request: Request) -> Response:
    """Fields left out are kept; team administrators may change ``groupIds``/``userIds`` only."""
    ctx = context_of(request)
    team_id = request.path_params["accessProfileId"]
    async with ctx.store.read() as tx:
        await load_team(tx, team_id)  # 404 before reading the body: unknown ids are not a privilege question
    data = await read_object(request, envelope="accessProfile")
    async with ctx.store.transaction() as tx:
        current, revision = await load_team(tx, team_id)
        updated = await _apply(tx, current, data)
        _check_writer(request, current, updated)
        if current.predefined and updated.name != current.name:
            raise ApiError(400, f"predefined team {current.name!r} cannot be renamed")
        if current.id in FIXED_PRIVILEGES and updated.privilege != priv.to_bits(priv.ALL):
            raise ApiError(400, f"predefined team {current.name!r} holds every functional privilege; "
                                "its privileges cannot be changed")
        if updated.name != current.name:
            await _check_name(tx, updated.name, current.id)
            await _claim_name(tx, updated, current.name)
        await tx.update(TEAM, current.id, updated.model_dump(mode="json"), revision, name=updated.name)
    ctx.notify_change()
    return json_response(team_body(updated))


async def delete_team(request: Request) -> Response:
    """Predefined teams stay (400). The team leaves every asset it was assigned to; a team that an
    assignment rule assigns must be taken out of the rule first (400 naming it)."""
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        team, _ = await load_team(tx, request.path_params["accessProfileId"])
        if team.predefined or team.id in priv.PREDEFINED_TEAMS:
            raise ApiError(400, f"team {team.name!r} is predefined and cannot be deleted")
        for row in await tx.list(RULE):
            if team.id in (row.body.get("teamsAssigned") or []):
                raise ApiError(400, f"team {team.name!r} is assigned by team assignment rule "
                                    f"{row.body.get('name', row.id)!r}; remove it from the rule first")
        for kind in dt.ASSET_KINDS:
            for row in await tx.list(kind):
                stored = row.body.get("teams") or []
                if team.id in stored:
                    await save_body(tx, kind, row, {**row.body, "teams": [t for t in stored if t != team.id]})
        await tx.delete(_NAME_CLAIM, team.name.lower()[:128])
        await tx.delete(TEAM, team.id)
    ctx.notify_change()
    return Response(status_code=204)


routes = [
    Route("/accessProfiles", list_teams, methods=["GET"]),
    Route("/accessProfiles", create_team, methods=["POST"]),
    Route("/accessProfiles/{accessProfileId}", get_team, methods=["GET"]),
    Route("/accessProfiles/{accessProfileId}", update_team, methods=["PUT"]),
    Route("/accessProfiles/{accessProfileId}", delete_team, methods=["DELETE"]),
]
