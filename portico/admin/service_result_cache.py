"""``/serviceResultCache`` (by ``apiName`` + ``apiVersion``) and ``/serviceResultCache/{apiId}``:
the number of responses cached for an API (GET, ``{"Cache size": n}``) and clearing them (DELETE).

The cache is per node (in memory); these endpoints see the node that answers. With team work on, an
API the caller cannot see is unknown here too (404)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.common import json_response
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.gateway.snapshot import Services
from portico.policies._cache import ResultCache, cache_of


def _cache(request: Request) -> ResultCache:
    services: Services | None = context_of(request).extras.get("services")
    if services is None:
        raise ApiError(503, "the gateway's cache is not available on this node")
    return cache_of(services)


async def _api_id_by_name(request: Request) -> str:
    name = request.query_params.get("apiName")
    version = request.query_params.get("apiVersion")
    if not name:
        raise ApiError(400, "query parameter 'apiName' is required")
    if not version:
        raise ApiError(400, "query parameter 'apiVersion' is required")
    async with context_of(request).store.read() as tx:
        for row in await tx.list("api"):
            if row.body.get("apiName") == name and row.body.get("apiVersion") == version \
                    and await teams.is_visible(request, tx, row):
                return row.id
    raise ApiError(404, f"no API named {name!r} with version {version!r}")


async def _api_id_by_path(request: Request) -> str:
    api_id = request.path_params["apiId"]
    async with context_of(request).store.read() as tx:
        row = await tx.get("api", api_id)
        if row is None:
            raise not_found("API", api_id)
        await teams.require_visible(request, tx, row, "API", api_id)
    return api_id


async def size_by_name(request: Request) -> Response:
    return json_response({"Cache size": _cache(request).size(await _api_id_by_name(request))})


async def clear_by_name(request: Request) -> Response:
    _cache(request).clear(await _api_id_by_name(request))
    return Response(status_code=204)


async def size_by_id(request: Request) -> Response:
    return json_response({"Cache size": _cache(request).size(await _api_id_by_path(request))})


async def clear_by_id(request: Request) -> Response:
    _cache(request).clear(await _api_id_by_path(request))
    return Response(status_code=204)


routes = [
    Route("/serviceResultCache", size_by_name, methods=["GET"]),
    Route("/serviceResultCache", clear_by_name, methods=["DELETE"]),
    Route("/serviceResultCache/{apiId}", size_by_id, methods=["GET"]),
    Route("/serviceResultCache/{apiId}", clear_by_id, methods=["DELETE"]),
]
