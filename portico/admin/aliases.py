"""``/alias`` and ``/alias/{aliasId}``: CRUD of simple and endpoint aliases (APIGatewayAlias.json).

Names are unique; an alias referenced as ``${name}`` by a policy action cannot be deleted.
Authorization servers (``authServerAlias``, including the built-in ``local``) and DCR providers
(``clientMetadataMapping``) are handed to :mod:`portico.admin.auth_servers`."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import auth_servers
from portico.admin.common import json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.domain.alias import Alias, AliasError, parse_alias
from portico.security.keystore.records import KEYSTORE, TRUSTSTORE, store_problem
from portico.store import StoreTransaction
from portico.wire.aliases import alias_body


async def _load(tx: StoreTransaction, alias_id: str) -> tuple[Alias, int]:
    row = await tx.get("alias", alias_id)
    if row is None:
        raise not_found("alias", alias_id)
    if row.body.get("type") in auth_servers.TYPES:
        raise ApiError(400, f"field 'type': alias {alias_id!r} is of type {row.body.get('type')!r}; "
                            "the type of an alias cannot change")
    return Alias.model_validate(row.body), row.revision


def _parse(data: dict[str, Any], alias_id: str) -> Alias:
    try:
        return parse_alias(data, alias_id)
    except AliasError as exc:
        raise ApiError(400, str(exc)) from None


async def _check_unique(tx: StoreTransaction, alias: Alias) -> None:
    await _check_unique_name(tx, alias.id, alias.name)
    await _check_stores(tx, alias)


async def _check_stores(tx: StoreTransaction, alias: Alias) -> None:
    """An endpoint alias's keystore (with its key alias) and truststore must be usable (issue 5)."""
    if alias.keyAlias and not alias.keystoreAlias:
        raise ApiError(400, "field 'keyAlias' needs 'keystoreAlias': name the keystore holding the key")
    checks = (("keystoreAlias", KEYSTORE, alias.keystoreAlias, None),
              ("keyAlias", KEYSTORE, alias.keystoreAlias, alias.keyAlias),
              ("truststoreAlias", TRUSTSTORE, alias.truststoreAlias, None))
    for field, kind, store, key_alias in checks:
        if store and (key_alias or field != "keyAlias"):
            problem = await store_problem(tx, kind, store, key_alias)
            if problem:
                raise ApiError(400, f"field {field!r}: {problem}")


async def _check_unique_name(tx: StoreTransaction, alias_id: str, name: str) -> None:
    for row in await tx.list("alias"):
        if row.id != alias_id and row.body.get("name") == name:
            raise ApiError(400, f"field 'name': an alias named {name!r} already exists")


def _wire(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("type") in auth_servers.TYPES:
        return auth_servers.wire(body)
    return alias_body(Alias.model_validate(body))


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
    return json_response({"alias": [_wire(r.body) for r in rows]})


async def get_alias(request: Request) -> Response:
    alias_id = request.path_params["aliasId"]
    async with context_of(request).store.read() as tx:
        row = await tx.get("alias", alias_id)
    if row is None:
        raise not_found("alias", alias_id)
    return json_response({"alias": _wire(row.body)})


async def create_alias(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="alias")
    if data.get("type") in auth_servers.TYPES:
        return await _create_typed(request, data)
    alias = _parse(data, str(uuid.uuid4()))
    async with ctx.store.transaction() as tx:
        await _check_unique(tx, alias)
        await tx.insert("alias", alias.id, alias.model_dump(), name=alias.name)
    ctx.notify_change()
    return json_response({"alias": alias_body(alias)}, status=201)


async def _create_typed(request: Request, data: dict[str, Any]) -> Response:
    auth_servers.require_security(request)
    ctx = context_of(request)
    data = await auth_servers.prepare(ctx, data)
    async with ctx.store.transaction() as tx:
        body, name = await auth_servers.parse(ctx, tx, data, str(uuid.uuid4()), None)
        await _check_unique_name(tx, body["id"], name)
        await tx.insert("alias", body["id"], body, name=name)
    ctx.notify_change()
    return json_response({"alias": _wire(body)}, status=201)


async def _update_typed(request: Request, data: dict[str, Any], alias_id: str) -> Response:
    auth_servers.require_security(request)
    ctx = context_of(request)
    data = await auth_servers.prepare(ctx, data)
    async with ctx.store.transaction() as tx:
        row = await tx.get("alias", alias_id)
        if row is None:
            raise not_found("alias", alias_id)
        body, name = await auth_servers.parse(ctx, tx, data, alias_id, row.body)
        await _check_unique_name(tx, alias_id, name)
        await tx.update("alias", alias_id, body, row.revision, name=name)
    ctx.notify_change()
    return json_response({"alias": _wire(body)})


async def update_alias(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="alias")
    alias_id = request.path_params["aliasId"]
    if alias_id == auth_servers.LOCAL_ID and "type" not in data:
        data = {**data, "type": "authServerAlias"}
    if data.get("type") in auth_servers.TYPES:
        return await _update_typed(request, data, alias_id)
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
        row = await tx.get("alias", request.path_params["aliasId"])
        if row is not None and row.body.get("type") in auth_servers.TYPES:
            auth_servers.require_security(request)
            blocker = await auth_servers.deletion_blocker(tx, row.body)
            if blocker:
                raise ApiError(400, blocker)
            await tx.delete("alias", row.id)
            ctx.notify_change()
            return Response(status_code=204)
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
