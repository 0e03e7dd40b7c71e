"""The management application: routes under ``/rest/apigateway``, auth, and error mapping."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

import portico.admin as admin_package
from portico.admin.audit import record_write
from portico.admin.auth import authorize
from portico.admin.common import json_response
from portico.admin.context import AdminContext, context_of
from portico.admin.errors import ApiError
from portico.admin.openapi import build_document
from portico.store import STORE_BUSY, ConflictError, store_busy

log = logging.getLogger("portico.admin")
BASE = "/rest/apigateway"
Endpoint = Callable[[Request], Awaitable[Response]]


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _guarded(endpoint: Endpoint, route_path: str) -> Endpoint:
    async def guarded(request: Request) -> Response:
        await authorize(request, route_path)
        response = await endpoint(request)
        if request.method in _WRITES and response.status_code < 400:
            record_write(request, route_path, response)  # audit log; never raises, never waits
            # Read-after-write: this node's gateway serves the change before the caller hears back.
            await context_of(request).settle()
        return response

    guarded.__doc__ = endpoint.__doc__
    guarded.__name__ = endpoint.__name__
    return guarded


def _routes() -> list[Route]:
    """Every module of this package with a module-level ``routes`` list contributes its routes:
    adding a resource is adding its module."""
    found: list[Route] = []
    for info in sorted(pkgutil.iter_modules(admin_package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{admin_package.__name__}.{info.name}")
        routes = getattr(module, "routes", None)
        if isinstance(routes, list):
            found.extend(r for r in routes if isinstance(r, Route))
    return found


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": 'Basic realm="Portico"'} if exc.status == 401 else None
    response = json_response({"errorDetails": exc.message}, exc.status)
    if headers:
        response.headers.update(headers)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no such resource: {request.url.path}",
               405: f"method {request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
    return json_response({"errorDetails": message}, exc.status_code)


async def _conflict(request: Request, exc: Exception) -> Response:
    return json_response({"errorDetails": str(exc)}, 409)


async def _timeout(request: Request, exc: Exception) -> Response:
    return json_response({"errorDetails": "the client stopped sending the request body"}, 408)


async def _store_error(request: Request, exc: Exception) -> Response:
    """A store too busy to take the call now (see ``store_busy``) is a 503 the client may retry."""
    if not store_busy(exc):
        raise exc  # a bug: on to the 500 of ``_unexpected``, and the server's log
    log.warning("store busy on %s %s: %s", request.method, request.url.path, exc)
    response = json_response({"errorDetails": STORE_BUSY}, 503)
    response.headers["Retry-After"] = "1"
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A bug: a plain 500 that tells nothing of the insides. Starlette raises ``exc`` on after this
    answer, and the server (``gateway/server.py``) logs it once with its traceback."""
    return json_response({"errorDetails": "internal error"}, 500)


def build_admin_app(ctx: AdminContext) -> Starlette:
    routes = _routes()
    document = build_document(routes, BASE)

    async def openapi(request: Request) -> Response:
        """The OpenAPI description of this management API."""
        return json_response(document)

    routes = [Route("/openapi.json", openapi, methods=["GET"], name="openapi"), *routes]
    guarded = [Route(r.path, _guarded(r.endpoint, r.path), methods=list(r.methods or []), name=r.name) for r in routes]
    app = Starlette(
        routes=[Mount(BASE, routes=guarded)],
        exception_handlers={
            ApiError: _api_error, HTTPException: _http_error, ConflictError: _conflict, TimeoutError: _timeout,
            OperationalError: _store_error, PoolTimeout: _store_error, Exception: _unexpected,
        },
    )
    app.state.portico = ctx
    return app
