"""``/is/keystore`` and ``/is/truststore`` (APIGatewayAdministration.json): upload, list, get, update
(POST on the store's path, as the reference has it) and delete keystores and truststores.

A store whose password (or a key password) is wrong is saved but not loaded, with the reason in
``message``; a file that is not a store of the declared type is refused with 400. Passwords and
the file are sealed with the master key and never returned: ``keyStorePassword`` and
``pkPasswordsList`` show handles, which may be sent back to keep the stored password.

An update must leave a store that something uses usable (400 naming the user otherwise): loaded,
holding the key aliases (with working passwords) or certificate aliases in use, and, for the local
authorization server's signing key, an RSA key. When the update changes that signing key under the
same alias, the old public key stays in the JWKS until the JWTs it signed have expired."""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin.common import json_response
from portico.admin.context import AdminContext, context_of
from portico.admin.errors import ApiError
from portico.admin.keystore_upload import Upload, check_name, key_aliases, password, read_upload
from portico.oauth import signing
from portico.security.keystore.errors import KeystoreError, KeystoreFormatError
from portico.security.keystore.formats import KEYSTORE_TYPES, PROVIDERS, TRUSTSTORE_TYPES, open_store
from portico.security.keystore.records import (
    KEYSTORE,
    TRUSTSTORE,
    KeyAliasConfig,
    LoadStatus,
    Unsealed,
    hold_for_change,
    judge_keystore,
    judge_truststore,
    seal_secrets,
    unseal,
)
from portico.security.keystore.usage import JWT_SIGNING, StoreUse, describe, store_users
from portico.security.secrets import SecretBox, SecretError
from portico.store import StoreTransaction
from portico.store.db import now_ms

HANDLE_PREFIX = "wm.security.keystore"


@dataclass(frozen=True)
class _Kind:
    asset: str
    label: str
    plural: str
    path_param: str
    types: tuple[str, ...]


KEYSTORES = _Kind(KEYSTORE, "keystore", "keystores", "keyStoreName", KEYSTORE_TYPES)
TRUSTSTORES = _Kind(TRUSTSTORE, "truststore", "truststores", "trustStoreName", TRUSTSTORE_TYPES)


def secret_box(ctx: AdminContext) -> SecretBox:
    box = ctx.extras.get("secrets")
    if not isinstance(box, SecretBox):
        raise ApiError(503, "no master key is configured on this node; keystores are unavailable")
    return box


def _handle(name: str) -> str:
    return f"{HANDLE_PREFIX}.{name}"


def keystore_wire(body: dict[str, Any]) -> dict[str, Any]:
    name = body["keyStoreName"]
    aliases: list[str] = body["pkAliases"]
    tokens: list[str | None] = body["sealedKeyPasswords"]
    return {
        "keyStoreName": name, "keyStoreDescription": body.get("keyStoreDescription"),
        "keyStoreType": body["keyStoreType"], "keyStoreProvider": body["keyStoreProvider"],
        "keyStorePassword": _handle(name),
        "pkAliasesList": ",".join(aliases),
        "pkPasswordsList": ",".join(" " if t is None else f"{_handle(name)}.{a}" for a, t in zip(aliases, tokens,
                                                                                                   strict=True)),
        "nullPKpasswds": ",".join("true" if t is None else "false" for t in tokens),
        "bitarray": ",".join(str(b) for b in body["bits"]),
        "isWarning": body["isWarning"], "isLoaded": body["isLoaded"], "message": body["message"],
        "uploadFileName": body["uploadFileName"],
        "keyAliases": body["keyAliases"], "certificateAliases": body["certificateAliases"],
    }


def truststore_wire(body: dict[str, Any]) -> dict[str, Any]:
    name = body["keyStoreName"]
    return {
        "id": name, "keyStoreName": name, "keyStoreDescription": body.get("keyStoreDescription"),
        "keyStoreType": body["keyStoreType"], "keyStoreProvider": body["keyStoreProvider"],
        "keyStorePassword": _handle(name), "keyStoreLocation": None,
        # the reference's examples spell it "certficateAliases", its schema "certificateAliases"
        "certificateAliases": body["certificateAliases"], "certficateAliases": body["certificateAliases"],
        "isLoaded": body["isLoaded"], "uploadFileName": body["uploadFileName"],
        "isWarning": body["isWarning"], "message": body["message"],
    }


def _wire(kind: _Kind, body: dict[str, Any]) -> dict[str, Any]:
    return keystore_wire(body) if kind is KEYSTORES else truststore_wire(body)


@dataclass
class _Inputs:
    """What a create or update resolved to, before the file is opened."""

    name: str
    description: str | None
    store_type: str
    file_name: str
    data: bytes
    password: str
    configured: list[KeyAliasConfig] | None


def _compose_message(kind: _Kind, name: str, status: LoadStatus) -> str:
    title = f"{kind.label.capitalize()} alias {name!r}"
    if not status.loaded:
        return f"{title} saved, but it is not loaded: {status.message}"
    if status.warning:
        return f"{title} saved successfully. Warning: {status.message}"
    return f"{title} saved successfully."


def _build_body(kind: _Kind, box: SecretBox, given: _Inputs) -> dict[str, Any]:
    """Open the file, judge it and seal it: the asset body. CPU-bound (PKCS12 key derivation)."""
    try:
        opened = open_store(given.data, given.store_type, given.password)
    except KeystoreFormatError as exc:
        raise ApiError(400, f"field 'fileContent': {exc}") from None
    configured: list[KeyAliasConfig] = []
    if kind is KEYSTORES:
        configured = given.configured if given.configured is not None else [
            KeyAliasConfig(a, None) for a in opened.key_aliases]
        resolved: list[KeyAliasConfig] = []
        for item in configured:
            stored = opened.find_alias(item.alias)
            if stored is None and not (opened.password_error and not opened.key_aliases):
                raise ApiError(400, f"field 'pkAliasesList': {item.alias!r} is not a private key alias of the "
                                    f"uploaded keystore (it has: {', '.join(opened.key_aliases) or 'none'})")
            resolved.append(KeyAliasConfig(stored or item.alias, item.password))
        configured = resolved
        status = judge_keystore(opened, configured)
    else:
        status = judge_truststore(opened)
    return {
        "keyStoreName": given.name, "keyStoreDescription": given.description,
        "keyStoreType": given.store_type, "keyStoreProvider": PROVIDERS[given.store_type],
        "uploadFileName": given.file_name,
        "keyAliases": opened.key_aliases, "certificateAliases": opened.certificate_aliases,
        "pkAliases": [c.alias for c in configured], "bits": list(status.bits),
        "isLoaded": status.loaded, "isWarning": status.warning or not status.loaded,
        "message": _compose_message(kind, given.name, status), "updated": now_ms(),
        **seal_secrets(box, kind.asset, given.name, given.data, given.password, configured),
    }


def _store_type(kind: _Kind, upload: Upload, default: str) -> str:
    value = (upload.text("keyStoreType") or default).strip().upper()
    if value not in kind.types:
        raise ApiError(400, f"field 'keyStoreType' must be one of {list(kind.types)}, got {value!r}")
    provider = upload.text("keyStoreProvider")
    if provider and provider.strip() not in PROVIDERS.values():
        raise ApiError(400, f"field 'keyStoreProvider' must be one of {sorted(set(PROVIDERS.values()))}")
    return value


def _description(upload: Upload, default: str | None) -> str | None:
    value = upload.text("keyStoreDescription")
    if value is None:
        return default
    if len(value) > 1000 or any(ord(c) < 32 and c not in "\t\r\n" for c in value):
        raise ApiError(400, "field 'keyStoreDescription' must be at most 1000 characters, without control "
                            "characters")
    return value


def _file_name(upload: Upload, default: str) -> str:
    value = upload.text("uploadFileName")
    if not value:
        return default
    name = posixpath.basename(value.replace("\\", "/")).strip()
    if not name or len(name) > 255 or any(ord(c) < 32 for c in name):
        raise ApiError(400, "field 'uploadFileName' must be a file name of at most 255 characters, without "
                            "control characters")
    return name


def _create_inputs(kind: _Kind, upload: Upload) -> _Inputs:
    raw_name = upload.text("keyStoreName")
    if not raw_name:
        raise ApiError(400, "field 'keyStoreName' is required")
    name = check_name(raw_name.strip(), kind.label)
    store_type = _store_type(kind, upload, "JKS")
    if upload.file is None:
        raise ApiError(400, "field 'fileContent' is required: upload the store file")
    secret = password(upload)
    if secret is None:
        if store_type != "PEM":
            raise ApiError(400, "field 'keyStorePassword' is required")
        secret = ""
    extension = {"JKS": "jks", "PKCS12": "p12", "PEM": "pem"}[store_type]
    return _Inputs(name, _description(upload, None), store_type, _file_name(upload, f"{name}.{extension}"),
                   upload.file, secret, key_aliases(upload, _handle(name)) if kind is KEYSTORES else None)


def _keep_key_passwords(configured: list[KeyAliasConfig] | None, name: str,
                        old: Unsealed | None) -> list[KeyAliasConfig] | None:
    """Replace handles sent back in ``pkPasswordsList`` by the stored passwords they stand for."""
    if configured is None:
        return None
    out: list[KeyAliasConfig] = []
    for item in configured:
        if item.password == f"{_handle(name)}.{item.alias}":
            kept = next((c.password for c in (old.configured if old else []) if c.alias.lower() == item.alias.lower()),
                        None)
            if kept is None:
                raise ApiError(400, f"field 'pkPasswordsList': key alias {item.alias!r} has no stored password to keep")
            item = KeyAliasConfig(item.alias, kept)
        out.append(item)
    return out


def _update_inputs(kind: _Kind, upload: Upload, body: dict[str, Any], box: SecretBox) -> _Inputs:
    name = body["keyStoreName"]
    sent_name = upload.text("keyStoreName")
    if sent_name is not None and sent_name.strip() != name:
        raise ApiError(400, f"field 'keyStoreName' ({sent_name!r}) differs from the {kind.label} in the path "
                            f"({name!r}); stores cannot be renamed")
    secret = password(upload)
    if secret == _handle(name):
        secret = None
    configured = key_aliases(upload, _handle(name)) if kind is KEYSTORES else None
    needs_old = upload.file is None or secret is None or any(
        c.password == f"{_handle(name)}.{c.alias}" for c in configured or [])
    old: Unsealed | None = None
    if needs_old:
        try:
            old = unseal(box, kind.asset, body)
        except SecretError as exc:
            raise ApiError(409, f"the stored {kind.label} cannot be read on this node ({exc}); upload the file "
                                "with all its passwords again") from None
    if configured is None and upload.file is None and old is not None:
        configured = old.configured  # nothing about key aliases sent: keep them as they are
    store_type = _store_type(kind, upload, body["keyStoreType"])
    data = upload.file if upload.file is not None else old.data if old else b""
    return _Inputs(name, _description(upload, body.get("keyStoreDescription")), store_type,
                   _file_name(upload, body["uploadFileName"]), data,
                   secret if secret is not None else old.password if old else "",
                   _keep_key_passwords(configured, name, old))


def _signing_problem(inputs: _Inputs, alias: str) -> str | None:
    """Why key ``alias`` of the new file cannot sign JWTs (RS256/384/512), or None. CPU-bound."""
    try:
        opened = open_store(inputs.data, inputs.store_type, inputs.password)
        stored = opened.find_alias(alias) or alias
        password = next((c.password for c in inputs.configured or [] if c.alias == stored), None)
        key = opened.key(stored, password).private_key
    except (KeystoreError, KeyError) as exc:
        return f"key {alias!r} cannot be opened ({exc})"
    if not isinstance(key, rsa.RSAPrivateKey):
        return f"key {alias!r} is not an RSA key"
    if key.key_size < 2048:
        return f"key {alias!r} has {key.key_size} bits (at least 2048 are needed)"
    return None


def _breaks(kind: _Kind, use: StoreUse, body: dict[str, Any]) -> str | None:
    """Why the new body no longer serves ``use``, or None."""
    if not body["isLoaded"]:
        return "it would not be loaded"
    if kind is TRUSTSTORES and not body["certificateAliases"]:
        return "it would hold no trusted certificates"
    if use.key_alias:
        loaded = {a.lower(): bit for a, bit in zip(body["pkAliases"], body["bits"], strict=False)}
        if use.key_alias.lower() not in {a.lower() for a in body["keyAliases"]}:
            return f"it would no longer hold the key alias {use.key_alias!r}"
        if not loaded.get(use.key_alias.lower()):
            return f"the key alias {use.key_alias!r} would have no working password"
    if use.certificate_alias and use.certificate_alias.lower() not in {
            a.lower() for a in body["certificateAliases"]}:
        return f"it would no longer hold the certificate {use.certificate_alias!r}"
    return None


async def _check_still_usable(tx: StoreTransaction, kind: _Kind, name: str, old: dict[str, Any],
                              body: dict[str, Any], inputs: _Inputs) -> None:
    """Replacing a store that something uses must leave it usable by each user it served (400
    naming them); a user the store did not serve before (a repair in progress) does not block.
    Run in the replacing transaction, under the keystore lock: no new user comes in between."""
    await hold_for_change(tx)
    for use in await store_users(tx, kind.asset, name):
        problem = _breaks(kind, use, body) if _breaks(kind, use, old) is None else None
        if problem is None and use.purpose == JWT_SIGNING and use.key_alias:
            problem = await asyncio.to_thread(_signing_problem, inputs, use.key_alias)
        if problem:
            raise ApiError(400, f"{kind.label} {name!r} is used by {describe([use])}: {problem}; the update is "
                                "refused (change that user first)")


async def list_stores(request: Request, kind: _Kind) -> Response:
    async with context_of(request).store.read() as tx:
        rows = await tx.list(kind.asset)
    return json_response({kind.plural: [_wire(kind, r.body) for r in rows]})


async def get_store(request: Request, kind: _Kind) -> Response:
    name = request.path_params[kind.path_param]
    async with context_of(request).store.read() as tx:
        row = await tx.get(kind.asset, name)
    if row is None:
        raise ApiError(404, f"{kind.label} {name!r} was not found")
    return json_response({kind.plural: [_wire(kind, row.body)]})


async def create_store(request: Request, kind: _Kind) -> Response:
    ctx = context_of(request)
    box = secret_box(ctx)
    upload = await read_upload(request)
    inputs = _create_inputs(kind, upload)
    body = await asyncio.to_thread(_build_body, kind, box, inputs)
    async with ctx.store.transaction() as tx:
        if await tx.get(kind.asset, inputs.name) is not None:
            raise ApiError(409, f"a {kind.label} named {inputs.name!r} already exists; update it with "
                                f"POST /is/{kind.label}/{inputs.name}")
        await tx.insert(kind.asset, inputs.name, {**body, "created": body["updated"]}, name=inputs.name)
    ctx.notify_change()
    return json_response(_wire(kind, body))


async def update_store(request: Request, kind: _Kind) -> Response:
    ctx = context_of(request)
    box = secret_box(ctx)
    name = request.path_params[kind.path_param]
    upload = await read_upload(request)
    async with ctx.store.read() as tx:
        row = await tx.get(kind.asset, name)
    if row is None:
        raise ApiError(404, f"{kind.label} {name!r} was not found")
    inputs = _update_inputs(kind, upload, row.body, box)
    body = await asyncio.to_thread(_build_body, kind, box, inputs)
    async with ctx.store.transaction() as tx:
        await _check_still_usable(tx, kind, name, row.body, body, inputs)
        old_key = await signing.key_from_keystore(tx, box, name) if kind is KEYSTORES else None
        await tx.update(kind.asset, name, {**body, "created": row.body.get("created")}, row.revision, name=name)
        await signing.retire_if_replaced(tx, box, old_key)
    ctx.notify_change()
    return json_response(_wire(kind, body))


async def delete_store(request: Request, kind: _Kind) -> Response:
    ctx = context_of(request)
    name = request.path_params[kind.path_param]
    async with ctx.store.transaction() as tx:
        await hold_for_change(tx)  # until the delete commits, no new user of the store is written
        if await tx.get(kind.asset, name) is None:
            raise ApiError(404, f"{kind.label} {name!r} was not found")
        uses = await store_users(tx, kind.asset, name)
        if uses:
            raise ApiError(400, f"{kind.label} {name!r} is in use by {describe(uses)}; change that first")
        await tx.delete(kind.asset, name)
    ctx.notify_change()
    return json_response({"message": f"{kind.label.capitalize()} alias {name!r} deleted."})


Handler = Callable[[Request, _Kind], Awaitable[Response]]


def _endpoint(handler: Handler, kind: _Kind, doc: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, kind)

    endpoint.__name__ = f"{handler.__name__}_{kind.label}"
    endpoint.__doc__ = doc.format(kind.label)
    return endpoint


routes = [
    route
    for kind, item in ((KEYSTORES, "/is/keystore/{keyStoreName}"), (TRUSTSTORES, "/is/truststore/{trustStoreName}"))
    for route in (
        Route(f"/is/{kind.label}", _endpoint(list_stores, kind, "List every {}."), methods=["GET"]),
        Route(f"/is/{kind.label}", _endpoint(create_store, kind, "Upload a {}."), methods=["POST"]),
        Route(item, _endpoint(get_store, kind, "One {}."), methods=["GET"]),
        Route(item, _endpoint(update_store, kind, "Update a {} (file, passwords, description)."),
              methods=["POST"]),
        Route(item, _endpoint(delete_store, kind, "Delete a {} nothing uses."), methods=["DELETE"]),
    )
]
