"""``/alias`` and ``/alias/{aliasId}``: CRUD of simple and endpoint aliases (APIGatewayAlias.json).

Names are unique; an alias referenced as ``${name}`` by a policy action cannot be deleted."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.domain.alias import Alias, AliasError, parse_alias
from portico.store import StoreTransaction
from portico.wire.aliases import alias_body


async def _load(tx: StoreTransaction, alias_id: str) -> tuple[Alias, int]:
    row = await tx.get("alias", alias_id)
    if row is None:
        raise not_found("alias", alias_id)
    return Alias.model_validate(row.body), row.revision


def _parse(data: dict[str, Any], alias_id: str) -> Alias:
    try:
        return parse_alias(data, alias_id)
    except AliasError as exc:
        raise ApiError(400, str(exc)) from None


async def _check_unique(tx: StoreTransaction, alias: Alias) -> None:
    for row in await tx.list("alias"):
        if row.id != alias.id and row.body.get("name") == alias.name:
            raise ApiError(400, f"field 'name': an alias named {alias.name!r} already exists")


async def _referencing_action(tx: StoreTransaction, name: str) -> str | None:
    """The id of a policy action whose parameters mention ``${name}``, if any."""
    needle = "${" + name + "}"
    for row in await tx.list("policyAction"):
        if needle in orjson.dumps(row.body.get("parameters", [])).decode():
            return row.id
    return None


async def list_aliases(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        rows = await tx.list("alias")
    return json_response({"alias": [alias_body(Alias.model_validate(r.body)) for r in rows]})


async def get_alias(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        alias, _ = await _load(tx, request.path_params["aliasId"])
    return json_response({"alias": alias_body(alias)})


async def create_alias(request: Request) -> Response:
    ctx = context_of(request)
    alias = _parse(await read_object(request, envelope="alias"), str(uuid.uuid4()))
    async with ctx.store.transaction() as tx:
        await _check_unique(tx, alias)
        await tx.insert("alias", alias.id, alias.model_dump(), name=alias.name)
    ctx.notify_change()
    return json_response({"alias": alias_body(alias)}, status=201)


async def update_alias(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="alias")
    async with ctx.store.transaction() as tx:
        current, revision = await _load(tx, request.path_params["aliasId"])
        alias = _parse(data, current.id)
        await _check_unique(tx, alias)
        if alias.name != current.name:
            user = await _referencing_action(tx, current.name)
            if user is not None:
                raise ApiError(400, f"field 'name': alias {current.name!r} is referenced by policy action {user!r}"
                                    "; it cannot be renamed")
        await tx.update("alias", alias.id, alias.model_dump(), revision, name=alias.name)
    ctx.notify_change()
    return json_response({"alias": alias_body(alias)})


async def delete_alias(request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        alias, _ = await _load(tx, request.path_params["aliasId"])
        user = await _referencing_action(tx, alias.name)
        if user is not None:
            raise ApiError(400, f"alias {alias.name!r} is referenced by policy action {user!r}; remove it there first")
        await tx.delete("alias", alias.id)
    ctx.notify_change()
    return Response(status_code=204)


routes = [
    Route("/alias", list_aliases, methods=["GET"]),
    Route("/alias", create_alias, methods=["POST"]),
    Route("/alias/{aliasId}", get_alias, methods=["GET"]),
    Route("/alias/{aliasId}", update_alias, methods=["PUT"]),
    Route("/alias/{aliasId}", delete_alias, methods=["DELETE"]),
]
