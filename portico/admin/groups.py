"""``/groups``: local user groups; membership is the group's ``userIds``.

Privileges reach a group's users through the teams that list the group (``groupIds``), so
deleting a group takes those privileges from its users and leaves the users be. The predefined
groups (``Administrators``, ``API-Gateway-Administrators``, ``API-Gateway-Providers``) cannot be
deleted or renamed; their members can change."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.auth import find_user
from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.admin.users import remove_member
from portico.domain.users import UserInputError, group_fields
from portico.security.principal import GROUP, TEAM
from portico.store import StoreTransaction
from portico.store.db import AssetRow
from portico.wire.users import group_wire


def _fields(data: dict[str, Any], creating: bool) -> dict[str, Any]:
    try:
        return group_fields(data, creating)
    except UserInputError as exc:
        raise ApiError(400, str(exc)) from None


async def _group(tx: StoreTransaction, key: str) -> AssetRow:
    row = await tx.get(GROUP, key)
    if row is None:
        named = await tx.list(GROUP, name=key)
        row = named[0] if named else None
    if row is None:
        raise not_found("group", key)
    return row


async def _user_ids(tx: StoreTransaction, given: list[str]) -> list[str]:
    """Member references (user ids, or login ids) as user ids; 400 naming the unknown ones."""
    out: list[str] = []
    unknown: list[str] = []
    for ref in given:
        user = await find_user(tx, ref)
        if user is None:
            unknown.append(ref)
        elif user.id not in out:
            out.append(user.id)
    if unknown:
        raise ApiError(400, f"field 'userIds': no user with id {unknown[0]!r}"
                       + (f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""))
    return out


async def _unique_name(tx: StoreTransaction, name: str, group_id: str) -> None:
    if any(r.id != group_id for r in await tx.list(GROUP, name=name)):
        raise ApiError(400, f"field 'name': a group named {name!r} already exists")


async def list_groups(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        return json_response({"groups": [group_wire(r) for r in await tx.list(GROUP)]})


async def create_group(request: Request) -> Response:
    ctx = context_of(request)
    fields = _fields(await read_object(request), creating=True)
    group_id = str(uuid.uuid4())
    async with ctx.store.transaction() as tx:
        await _unique_name(tx, fields["name"], group_id)
        members = await _user_ids(tx, fields.get("userIds", []))
        body = {"id": group_id, "description": "", **fields, "userIds": members, "predefined": False}
        row = await tx.insert(GROUP, group_id, body, name=fields["name"])
    ctx.notify_change()
    return json_response(group_wire(row), 201)


async def get_group(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        row = await _group(tx, request.path_params["groupId"])
    return json_response({"groups": [group_wire(row)]})


async def update_group(request: Request) -> Response:
    ctx = context_of(request)
    fields = _fields(await read_object(request), creating=False)
    async with ctx.store.transaction() as tx:
        row = await _group(tx, request.path_params["groupId"])
        name = fields.get("name", row.body.get("name", row.id))
        if row.body.get("predefined") and name != row.body.get("name", row.id):
            raise ApiError(400, f"group {row.id!r} is predefined and cannot be renamed")
        await _unique_name(tx, name, row.id)
        body = {**row.body, **fields}
        if "userIds" in fields:
            body["userIds"] = await _user_ids(tx, fields["userIds"])
        updated = await tx.update(GROUP, row.id, body, row.revision, name=name)
    ctx.notify_change()
    return json_response(group_wire(updated))


async def delete_group(request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        row = await _group(tx, request.path_params["groupId"])
        if row.body.get("predefined"):
            raise ApiError(400, f"group {row.id!r} is predefined and cannot be deleted")
        await remove_member(tx, TEAM, "groupIds", row.id)
        await tx.delete(GROUP, row.id)
    ctx.notify_change()
    return Response(status_code=204)


routes = [
    Route("/groups", list_groups, methods=["GET"]),
    Route("/groups", create_group, methods=["POST"]),
    Route("/groups/{groupId}", get_group, methods=["GET"]),
    Route("/groups/{groupId}", update_group, methods=["PUT"]),
    Route("/groups/{groupId}", delete_group, methods=["DELETE"]),
]
