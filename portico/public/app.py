"""The public endpoints as one Starlette app, and the dispatcher that puts it in front of the
management app on the main listener (requests under :data:`PREFIXES` go here, the rest to the
management app)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.context import AdminContext
from portico.gateway.asgi import ASGIApp
from portico.public import jwt, oauth2
from portico.public.common import json_out
from portico.store import STORE_BUSY, store_busy

log = logging.getLogger("portico.public")
PREFIXES = ("/rest/pub/apigateway/", "/invoke/pub.apigateway.oauth2/", "/oauth2/", "/.well-known/")

routes = [
    Route("/rest/pub/apigateway/jwt/certs", oauth2.certs, methods=["GET"]),
    Route("/rest/pub/apigateway/jwt/getJsonWebToken", jwt.get_json_web_token, methods=["GET"]),
    Route(f"{oauth2.REFERENCE_BASE}/getAccessToken", oauth2.token, methods=["POST"]),
    Route(f"{oauth2.REFERENCE_BASE}/authorize", oauth2.authorize, methods=["GET", "POST"]),
    Route("/oauth2/token", oauth2.token, methods=["POST"]),
    Route("/oauth2/authorize", oauth2.authorize, methods=["GET", "POST"]),
    Route("/oauth2/introspect", oauth2.introspect, methods=["POST"]),
    Route("/oauth2/revoke", oauth2.revoke, methods=["POST"]),
    Route("/oauth2/jwks", oauth2.certs, methods=["GET"]),
    Route("/.well-known/openid-configuration", oauth2.discovery, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", oauth2.discovery, methods=["GET"]),
]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no such resource: {request.url.path}",
               405: f"method {request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
    return json_out({"errorDetails": message}, exc.status_code)


async def _store_error(request: Request, exc: Exception) -> Response:
    if not store_busy(exc):
        raise exc  # a bug: on to the 500 of ``_unexpected``, and the server's log
    log.warning("store busy on %s %s: %s", request.method, request.url.path, exc)
    return json_out({"errorDetails": STORE_BUSY}, 503, {"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A bug: a plain 500 that tells nothing of the insides. Starlette raises ``exc`` on after this
    answer, and the server (``gateway/server.py``) logs it once with its traceback."""
    return json_out({"errorDetails": "internal error"}, 500)


def build_public_app(ctx: AdminContext) -> Starlette:
    handlers = {HTTPException: _http_error, OperationalError: _store_error, PoolTimeout: _store_error,
                Exception: _unexpected}
    app = Starlette(routes=list(routes), exception_handlers=handlers)
    app.state.portico = ctx  # the same context as the management app: store, secrets, user authentication
    return app


def with_public(public: ASGIApp, management: ASGIApp) -> ASGIApp:
    """One ASGI app: the public endpoints by path prefix, everything else to ``management``."""

    async def dispatch(scope, receive, send):  # type: ignore[no-untyped-def]
        path = scope.get("path", "")
        target = public if scope.get("type") == "http" and path.startswith(PREFIXES) else management
        await target(scope, receive, send)

    return dispatch
