"""The ``authServerAlias`` and ``clientMetadataMapping`` alias types (issue 5), used by ``/alias``
(admin/aliases.py hands these types to this module).

- ``local`` (``GET|PUT /alias/local``) is Portico's own authorization server: it cannot be deleted
  or renamed; its signing key (``sslConfig``) must be a loadable RSA key of a stored keystore;
  changing the key keeps the old public key in the JWKS until the JWTs it signed have expired.
- EXTERNAL servers: a ``discoveryURL`` fills what the body leaves empty (its document must name
  the issuer the URL belongs to); keystores, truststores, certificates and the DCR provider they
  name must exist. A server a strategy uses cannot be deleted or renamed.
- Issuers are unique across authorization servers: a JWT is routed to a server by its ``iss``.
- Providers (``clientMetadataMapping``): a provider an authorization server uses cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from portico.admin.context import AdminContext
from portico.admin.errors import ApiError
from portico.admin.scopes import mapping_using
from portico.oauth import signing
from portico.oauth.clients import KIND as STRATEGY
from portico.oauth.config import (
    AUTH_SERVER,
    LOCAL_ID,
    PROVIDER,
    AuthServer,
    ConfigError,
    Provider,
    auth_server_wire,
    parse_auth_server,
    parse_provider,
    provider_wire,
)
from portico.oauth.discovery import fetch_metadata, fill_from_metadata
from portico.oauth.runtime import trusted_certificate
from portico.security import privileges as priv
from portico.security.keystore import client_context_for
from portico.security.keystore.records import KeystoreUnavailable, hold_for_use, load_key_pair
from portico.security.secrets import SecretBox
from portico.store import StoreTransaction

TYPES = (AUTH_SERVER, PROVIDER)


def require_security(request: Request) -> None:
    """Authorization servers and providers are security configuration (the guide): writing them
    needs "Manage security configurations" besides the alias route's own privilege."""
    principal = getattr(request.state, "principal", None)
    if principal is not None and not principal.holds(priv.MANAGE_SECURITY_CONFIG):
        raise ApiError(403, f"changing authorization servers and providers needs the "
                            f"{priv.MANAGE_SECURITY_CONFIG!r} privilege")


def _box(ctx: AdminContext) -> SecretBox:
    box: SecretBox = ctx.extras["secrets"]
    return box


def wire(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("type") == AUTH_SERVER:
        return auth_server_wire(AuthServer.model_validate(body))
    return provider_wire(Provider.model_validate(body))


async def prepare(ctx: AdminContext, data: dict[str, Any]) -> dict[str, Any]:
    """Before the write transaction: fill an EXTERNAL server's fields from its discovery URL."""
    url = data.get("discoveryURL")
    if data.get("type") != AUTH_SERVER or not isinstance(url, str) or not url:
        return data
    verify: Any = True
    ssl = data.get("sslConfig")
    if isinstance(ssl, dict) and isinstance(ssl.get("trustStoreAlias"), str) and ssl["trustStoreAlias"]:
        try:
            verify = await client_context_for(ctx.store, _box(ctx), ssl["trustStoreAlias"])
        except KeystoreUnavailable as exc:
            raise ApiError(400, f"field 'sslConfig.trustStoreAlias': {exc}") from None
    try:
        return fill_from_metadata(data, await fetch_metadata(url, verify))
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None


async def parse(ctx: AdminContext, tx: StoreTransaction, data: dict[str, Any], alias_id: str,
                current: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """Validate and check references; the stored body and the name. Rotates ``local``'s key."""
    kind = data.get("type")
    if current is not None and current.get("type") != kind:
        raise ApiError(400, f"field 'type': alias {alias_id!r} is of type {current.get('type')!r}; "
                            "the type of an alias cannot change")
    try:
        if kind == PROVIDER:
            provider = parse_provider(data, alias_id)
            await _check_provider_rename(tx, provider, current)
            return provider.model_dump(exclude_none=True), provider.name
        if alias_id == LOCAL_ID:
            data = {"authServerType": "LOCAL_IS", "name": LOCAL_ID, **data}
        old = AuthServer.model_validate(current) if current else None
        server = parse_auth_server(data, alias_id, _box(ctx), old)
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None
    if alias_id == LOCAL_ID and server.authServerType != "LOCAL_IS":
        raise ApiError(400, "field 'authServerType': 'local' is the built-in LOCAL_IS server")
    await _check_references(ctx, tx, server)
    await _check_issuer(tx, server)
    if old is not None and old.name != server.name:
        user = await _strategy_using(tx, old.name)
        if user:
            raise ApiError(400, f"field 'name': authorization server {old.name!r} is used by strategy {user!r}; "
                                "it cannot be renamed")
        mapping = await mapping_using(tx, old.name)
        if mapping:
            raise ApiError(400, f"field 'name': authorization server {old.name!r} is used by scope mapping "
                                f"{mapping}; it cannot be renamed")
    if old is not None and old.name == server.name and server.scopes:
        dropped = {s.name for s in old.scopes} - {s.name for s in server.scopes}
        mapping = await mapping_using(tx, old.name, dropped) if dropped else None
        if mapping:
            raise ApiError(400, f"field 'scopes': scope mapping {mapping} requires a scope removed from "
                                f"{old.name!r}; change the mapping first")
    if server.is_local:
        await _rotate(ctx, tx, old or None, server)
    return server.model_dump(exclude_none=True), server.name


async def _check_references(ctx: AdminContext, tx: StoreTransaction, server: AuthServer) -> None:
    box = _box(ctx)
    ssl = server.sslConfig
    if ssl.keyStoreAlias or ssl.trustStoreAlias or server.localIntrospectionConfig.trustStoreAlias:
        await hold_for_use(tx)  # the stores checked below are not replaced or deleted before this commits
    if ssl.keyStoreAlias and ssl.keyAlias:
        try:
            if server.is_local:
                await signing.signing_key(tx, box, server)
            else:
                await load_key_pair(tx, box, ssl.keyStoreAlias, ssl.keyAlias)
        except KeystoreUnavailable as exc:
            raise ApiError(400, f"field 'sslConfig': {exc}") from None
    if ssl.trustStoreAlias and await tx.get("truststore", ssl.trustStoreAlias) is None:
        raise ApiError(400, f"field 'sslConfig.trustStoreAlias': truststore {ssl.trustStoreAlias!r} does not exist")
    local = server.localIntrospectionConfig
    if local.trustStoreAlias and local.certificateAlias:
        try:
            await trusted_certificate(tx, box, local.trustStoreAlias, local.certificateAlias)
        except Exception as exc:
            raise ApiError(400, f"field 'localIntrospectionConfig': {exc}") from None
    if server.providerName:
        names = {r.body.get("providerName") or r.body.get("name") for r in await tx.list("alias")
                 if r.body.get("type") == PROVIDER} | {r.body.get("name") for r in await tx.list("alias")
                                                       if r.body.get("type") == PROVIDER}
        if server.providerName not in names:
            raise ApiError(400, f"field 'providerName': no provider (clientMetadataMapping alias) named "
                                f"{server.providerName!r}")


async def _check_issuer(tx: StoreTransaction, server: AuthServer) -> None:
    """Two servers with one issuer would make routing a JWT by its ``iss`` ambiguous."""
    issuer = server.localIntrospectionConfig.issuer.strip()
    if not issuer:
        return
    for row in await tx.list("alias"):
        if row.id == server.id or row.body.get("type") != AUTH_SERVER:
            continue
        other = (row.body.get("localIntrospectionConfig") or {}).get("issuer")
        if isinstance(other, str) and other.strip() == issuer:
            raise ApiError(400, f"field 'localIntrospectionConfig.issuer': issuer {issuer!r} is already the issuer "
                                f"of authorization server {row.body.get('name', row.id)!r}")


async def _rotate(ctx: AdminContext, tx: StoreTransaction, old: AuthServer | None, new: AuthServer) -> None:
    """When ``local``'s signing key changes, publish the old public key until its JWTs expire."""
    if old is None:
        return
    box = _box(ctx)
    try:
        before = await signing.signing_key(tx, box, old)
    except KeystoreUnavailable:
        return
    after = await signing.signing_key(tx, box, new)
    if before.kid != after.kid:
        await signing.retire(tx, before, signing.keep_seconds(old))


async def _strategy_using(tx: StoreTransaction, server_name: str) -> str | None:
    for row in await tx.list(STRATEGY):
        if row.body.get("authServerAlias") == server_name:
            return str(row.body.get("name", row.id))
    return None


async def _server_using_provider(tx: StoreTransaction, provider: dict[str, Any]) -> str | None:
    names = {provider.get("name"), provider.get("providerName")} - {None, ""}
    for row in await tx.list("alias"):
        if row.body.get("type") == AUTH_SERVER and row.body.get("providerName") in names:
            return str(row.body.get("name", row.id))
    return None


async def _check_provider_rename(tx: StoreTransaction, provider: Provider, current: dict[str, Any] | None) -> None:
    if current is None:
        return
    if {current.get("name"), current.get("providerName")} == {provider.name, provider.providerName}:
        return
    user = await _server_using_provider(tx, current)
    if user:
        raise ApiError(400, f"field 'name': provider {current.get('name')!r} is used by authorization server "
                            f"{user!r}; it cannot be renamed")


async def deletion_blocker(tx: StoreTransaction, body: dict[str, Any]) -> str | None:
    """Why this alias cannot be deleted, or None."""
    if body.get("type") == AUTH_SERVER:
        if body.get("id") == LOCAL_ID:
            return "'local' is the built-in authorization server; it cannot be deleted"
        user = await _strategy_using(tx, str(body.get("name")))
        if user:
            return f"authorization server {body.get('name')!r} is used by strategy {user!r}; delete that first"
        mapping = await mapping_using(tx, str(body.get("name")))
        if mapping:
            return f"authorization server {body.get('name')!r} is used by scope mapping {mapping}; change that first"
        return None
    user = await _server_using_provider(tx, body)
    if user:
        return f"provider {body.get('name')!r} is used by authorization server {user!r}; change that first"
    return None
