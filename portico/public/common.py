"""Shared by the public endpoints: request parsing, the local server and its signing key."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from portico.admin.context import AdminContext, context_of
from portico.oauth.config import LOCAL_ID, AuthServer, default_local
from portico.oauth.signing import SigningKey, signing_key
from portico.security.keystore.records import KEYSTORE, KeystoreUnavailable
from portico.security.secrets import SecretBox
from portico.store import StoreTransaction

MAX_FORM = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_out(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def box_of(ctx: AdminContext) -> SecretBox:
    box: SecretBox = ctx.extras["secrets"]
    return box


async def read_params(request: Request) -> dict[str, str]:
    """GET: the query parameters. POST: the body's only (secrets stay out of URLs), form-urlencoded
    (RFC 6749) or a JSON object (the reference's examples send ``{"grant_type": "client_credentials"}``).
    Repeated names are refused."""
    if request.method != "POST":
        return dict(request.query_params)
    params: dict[str, str] = {}
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM:
            raise BadRequest(413, f"request body larger than {MAX_FORM} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return params
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or (not ctype and raw.lstrip()[:1] == b"{"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest(400, "malformed JSON in request body") from None
        if not isinstance(data, dict):
            raise BadRequest(400, "request body must be a JSON object")
        pairs = [(str(k), v if isinstance(v, str) else orjson.dumps(v).decode() if v is not None else "")
                 for k, v in data.items()]
    else:
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(400, "malformed form body") from None
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise BadRequest(400, f"parameter {name!r} is repeated")
        seen.add(name)
        params[name] = value
    return params


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(401, "malformed HTTP basic credentials") from None
    if not sep:
        raise BadRequest(401, "malformed HTTP basic credentials")
    from urllib.parse import unquote

    # RFC 6749 2.3.1: client credentials in basic are form-urlencoded first
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))


async def local_server(tx: StoreTransaction) -> tuple[AuthServer, int]:
    row = await tx.get("alias", LOCAL_ID)
    return (AuthServer.model_validate(row.body), row.revision) if row else (default_local(), 0)


async def local_key(ctx: AdminContext, tx: StoreTransaction, server: AuthServer, revision: int) -> SigningKey:
    """The signing key, cached while ``local`` and its keystore are unchanged (opening a keystore
    costs a key derivation)."""
    ssl = server.sslConfig
    store_rev = 0
    if ssl.keyStoreAlias:
        row = await tx.get(KEYSTORE, ssl.keyStoreAlias)
        store_rev = row.revision if row else -1
    key = (revision, server.tokenGeneratorConfig.algorithm, ssl.keyStoreAlias, ssl.keyAlias, store_rev)
    cache: dict[Any, SigningKey] = ctx.extras.setdefault("oauth_signing_keys", {})
    hit = cache.get(key)
    if hit is None:
        hit = await signing_key(tx, box_of(ctx), server)
        cache.clear()
        cache[key] = hit
    return hit


__all__ = ["BadRequest", "KeystoreUnavailable", "basic_credentials", "box_of", "context_of", "json_out",
           "local_key", "local_server", "read_params"]
