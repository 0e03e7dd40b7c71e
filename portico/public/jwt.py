"""``/rest/pub/apigateway/jwt``: the gateway's JWKS and JWTs for Portico users (APIGatewayPublicServices.json).

``getJsonWebToken`` authenticates a Portico user with HTTP basic (as the management API does: locks
and failed logins apply) and answers ``{"jwt": ...}`` signed by the local authorization server:
``iss`` its issuer, ``sub`` the login id, ``aud`` its audience, ``exp`` after its expiry minutes;
with ``app_id`` the application's id as the ``app_id`` claim. It is an access token: header type
``at+jwt`` (RFC 9068) and ``token_use: access``, so it is never mistaken for an ID token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portico.admin.auth import authenticate
from portico.admin.errors import ApiError
from portico.oauth.grants import jwt_claims
from portico.oauth.signing import ACCESS_TOKEN_TYPE, ACCESS_TOKEN_USE
from portico.public.common import NO_STORE, context_of, json_out, local_key, local_server
from portico.public.oauth2 import certs
from portico.security.keystore.records import KeystoreUnavailable


async def get_json_web_token(request: Request) -> Response:
    ctx = context_of(request)
    try:
        principal = await authenticate(request)
    except ApiError as exc:
        return json_out({"errorDetails": exc.message}, 401, {"WWW-Authenticate": 'Basic realm="Portico"'})
    app_id = request.query_params.get("app_id")
    async with ctx.store.read() as tx:
        if app_id is not None and (not app_id or await tx.get("application", app_id) is None):
            return json_out({"errorDetails": f"app_id: no application with id {app_id!r}"}, 400)
        server, revision = await local_server(tx)
        try:
            key = await local_key(ctx, tx, server, revision)
        except KeystoreUnavailable as exc:
            return json_out({"errorDetails": f"the local authorization server cannot sign JWTs: {exc}"}, 500)
    extra = {"token_use": ACCESS_TOKEN_USE, **({"app_id": app_id} if app_id else {})}
    claims = jwt_claims(server, principal.login_id, extra=extra)
    return json_out({"jwt": key.sign(claims, typ=ACCESS_TOKEN_TYPE)}, headers=NO_STORE)


__all__ = ["certs", "get_json_web_token"]
