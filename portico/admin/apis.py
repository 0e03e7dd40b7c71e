"""``/apis``: create, list, read, update, delete, activate, versions, source, applications."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.api_assets import (
    SpecInput,
    absolute_endpoints,
    build_api,
    check_name_and_version,
    default_policy,
    load_api,
    new_id,
    now_ms,
    parse_spec,
    read_spec_input,
    routing_uri,
    save_api,
    source_of,
    versions_of,
    write_policy_assets,
)
from portico.admin.api_scopes import check_removed, settle_scopes, submitted_definition
from portico.admin.common import bool_param, ids_param, int_param, json_response, read_object
from portico.admin.context import context_of
from portico.admin.errors import ApiError
from portico.admin.federated import changed, definition_changed, refuse_changes
from portico.domain.api import Api, NativeEndpoint
from portico.domain.application import Application
from portico.domain.package import Package
from portico.domain.policy import Policy, PolicyAction
from portico.federation import ingest
from portico.specs import ImportedSpec, SpecError, carry_exposure, render
from portico.store import StoreTransaction
from portico.wire.apis import api_list, api_response, versions_list
from portico.wire.applications import applications_response
from portico.wire.packages import package_body


async def create_api(request: Request) -> Response:
    ctx = context_of(request)
    spec_in = await read_spec_input(request)
    spec = await parse_spec(ctx.store, spec_in)
    async with ctx.store.transaction() as tx:
        name = (spec_in.field("apiName") or spec.title).strip()
        version = (spec_in.field("apiVersion") or spec.version or "1.0").strip()
        if not name:
            raise ApiError(400, "field 'apiName' is required when the definition has no info.title")
        _check_usable_defaults(spec_in, name, version)
        api_id = new_id()
        endpoints = absolute_endpoints(spec)
        policy, actions = default_policy(api_id, name, endpoints[0] if endpoints else None)
        api = build_api(spec, spec_in, api_id, policy.id, name, version)
        _settle_exposure(api, spec_in, None)
        api.scopes = settle_scopes(spec_in.fields, submitted_definition(spec_in.fields), api.apiDefinition, None)
        api.teams = await teams.teams_for_new(request, tx, "api", api.model_dump(mode="json"),
                                              spec_in.fields.get("teams"))
        await write_policy_assets(tx, policy, actions)
        await save_api(tx, api, None)
        await tx.insert("api_source", api_id, source_of(spec, spec_in).model_dump())
        versions = await versions_of(tx, name)
    ctx.notify_change()
    return json_response(api_response(api, versions))


async def list_apis(request: Request) -> Response:
    ids = ids_param(request, "apiIds")
    offset = int_param(request, "from", 0, maximum=10**9)
    size = int_param(request, "size", -1, minimum=-1, maximum=10**6)
    async with context_of(request).store.read() as tx:
        rows = await teams.list_visible(request, tx, "api", ids=ids, offset=offset, limit=None if size < 0 else size)
    return json_response(api_list([Api.model_validate(r.body) for r in rows]))


async def get_api(request: Request) -> Response:
    fmt = request.query_params.get("format")
    async with context_of(request).store.read() as tx:
        api, _ = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        versions = await versions_of(tx, api.apiName)
    if fmt:
        try:
            return json_response(render(api.apiDefinition, fmt.lower()))
        except SpecError as exc:
            raise ApiError(400, f"query parameter 'format': {exc}") from None
    return json_response(api_response(api, versions))


async def update_api(request: Request) -> Response:
    ctx = context_of(request)
    spec_in = await read_spec_input(request, allow_empty=True)
    spec = await parse_spec(ctx.store, spec_in) if spec_in.raw is not None else None
    async with ctx.store.transaction() as tx:
        api, revision = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        _check_system_version(api, spec_in)
        if api.federation:
            spec = await _check_federated_update(tx, api, spec, spec_in)
        previous = api.model_copy(deep=True)
        if spec is not None:
            await _retarget_default_routing(tx, api, absolute_endpoints(spec))
            api.apiDefinition = spec.definition
            _settle_exposure(api, spec_in, previous)
            # A document with only relative servers leaves the routing where it was: so does the endpoint.
            api.nativeEndpoint = [NativeEndpoint(uri=u) for u in absolute_endpoints(spec)] or api.nativeEndpoint
            api.sourceFormat = spec.source_format
            await tx.upsert("api_source", api.id, source_of(spec, spec_in).model_dump())
        submitted = submitted_definition(spec_in.fields) if spec is not None else None
        api.scopes = settle_scopes(spec_in.fields, submitted, api.apiDefinition, previous)
        await check_removed(tx, api, previous.scopes, api.scopes)
        _apply_metadata(api, spec_in)
        if api.federation:  # whatever changed, what ingestion writes again stays the provider's
            await refuse_changes(tx, f"API {api.apiName} {api.apiVersion}", api.federation,
                                 changed(previous, api, ingest.API_OWNED))
        api.lastModified = now_ms()
        api.systemVersion += 1
        api.teams = await teams.teams_after_update(tx, "api", api.model_dump(mode="json"), api.teams)
        await save_api(tx, api, revision)
        versions = await versions_of(tx, api.apiName)
    ctx.notify_change()
    return json_response(api_response(api, versions))


async def _check_federated_update(tx: StoreTransaction, api: Api, spec: ImportedSpec | None,
                                  spec_in: SpecInput) -> ImportedSpec | None:
    """Refuse changes to what ingestion writes again (:mod:`portico.admin.federated`); a definition
    sent back unchanged is left out of the update (its servers would become a native endpoint)."""
    fields = []
    if spec is not None and definition_changed(api.apiDefinition, spec, submitted_definition(spec_in.fields)):
        fields.append("the definition ('apiDefinition': resources, methods, servers and native endpoint)")
    if spec_in.fields.get("apiDescription") is not None:
        if spec_in.field("apiDescription") != api.apiDescription.strip():
            fields.append("'apiDescription'")
        else:  # sent back as read: kept as ingested (an update would strip it)
            del spec_in.fields["apiDescription"]
    await refuse_changes(tx, f"API {api.apiName} {api.apiVersion}", api.federation or {}, fields)
    return None


def _check_usable_defaults(spec_in: SpecInput, name: str, version: str) -> None:
    """A name or version taken from the document, when unusable, is named as the document's."""
    for field, taken, where in (("apiName", name, "info.title"), ("apiVersion", version, "info.version")):
        if spec_in.field(field):
            continue
        try:
            check_name_and_version(taken, "1") if field == "apiName" else check_name_and_version("x", taken)
        except ApiError:
            raise ApiError(400, f"{where} {taken[:60]!r} cannot be the API's {field[3:].lower()} (at most 255 "
                                f"characters, no '/' or control characters); give field '{field}'") from None


def _settle_exposure(api: Api, spec_in: SpecInput, previous: Api | None) -> None:
    """Which paths and operations the new definition exposes (``enabled``): as the submitted
    inline definition says, else as before (a re-import keeps them), else enabled."""
    try:
        carry_exposure(api.apiDefinition, submitted_definition(spec_in.fields),
                       previous.apiDefinition if previous is not None else None)
    except SpecError as exc:
        raise ApiError(400, str(exc)) from None
    if api.isActive and not _has_enabled_operations(api):
        raise ApiError(400, f"API {api.apiName} {api.apiVersion} is active and would have no enabled operation; "
                            "enable one, or deactivate the API first")


def _check_system_version(api: Api, spec_in: SpecInput) -> None:
    sent = spec_in.fields.get("systemVersion")
    if sent is None:
        return
    text = str(sent).strip() if isinstance(sent, int | str) and not isinstance(sent, bool) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise ApiError(400, f"field 'systemVersion' must be an integer, got {sent!r:.40}")
    if int(text) != api.systemVersion:
        raise ApiError(409, f"the API was changed meanwhile (systemVersion {api.systemVersion}, sent {sent})")


def _apply_metadata(api: Api, spec_in: SpecInput) -> None:
    for key in ("apiDescription", "maturityState"):
        if spec_in.fields.get(key) is not None:  # sent, even empty: an empty one clears the field
            setattr(api, key, spec_in.field(key))
    name = spec_in.field("apiName")
    if name and name != api.apiName:
        raise ApiError(400, f"field 'apiName': the name of an API cannot be changed by update (it is {api.apiName!r})")
    version = spec_in.field("apiVersion")
    if version and version != api.apiVersion:
        raise ApiError(400, "the version of an API cannot be changed by update; use POST /apis/{id}/versions")


async def _retarget_default_routing(tx: StoreTransaction, api: Api, endpoints: list[str]) -> None:
    """Keep the default routing action pointing at the native endpoint when the spec moves it."""
    if not api.nativeEndpoint or not endpoints or endpoints[0] == api.nativeEndpoint[0].uri:
        return
    old_uri, new_uri = routing_uri(api.nativeEndpoint[0].uri), routing_uri(endpoints[0])
    for action in await _actions_of(tx, api):
        if action.templateKey != "straightThroughRouting":
            continue
        if any(p.get("templateKey") == "endpointUri" and p.get("values") == [old_uri] for p in action.parameters):
            for p in action.parameters:
                if p.get("templateKey") == "endpointUri":
                    p["values"] = [new_uri]
            row = await tx.get("policyAction", action.id)
            assert row is not None
            await tx.update("policyAction", action.id, action.model_dump(mode="json"), row.revision,
                            name=action.templateKey)


async def _actions_of(tx: StoreTransaction, api: Api) -> list[PolicyAction]:
    out = []
    for pid in api.policies:
        row = await tx.get("policy", pid)
        if row is None:
            continue
        for aid in Policy.model_validate(row.body).action_ids():
            arow = await tx.get("policyAction", aid)
            if arow is not None:
                out.append(PolicyAction.model_validate(arow.body))
    return out


async def _registered_apps(tx: StoreTransaction, api_id: str) -> list[Application]:
    apps = [Application.model_validate(r.body) for r in await tx.list("application")]
    return [a for a in apps if api_id in a.apiIds]


async def _delete_one(request: Request, tx: StoreTransaction, api_id: str, force: bool) -> None:
    api, _ = await load_api(tx, api_id)
    await teams.require_visible(request, tx, api, "API", api.id)
    if api.isActive:
        raise ApiError(400, f"API {api.apiName} {api.apiVersion} is active; deactivate it before deleting")
    apps = await _registered_apps(tx, api_id)
    if apps and not force:
        names = ", ".join(a.name for a in apps)
        raise ApiError(400, f"applications are registered to API {api.apiName}: {names}; use forceDelete=true")
    packages = [(Package.model_validate(r.body), r.revision) for r in await tx.list("package")]
    packages = [(p, revision) for p, revision in packages if api_id in p.apiIds]
    if packages and not force:
        names = ", ".join(p.name for p, _ in packages)
        # the integration's package of a federated API cannot be edited (admin/federated.py)
        hint = "" if any(p.federation for p, _ in packages) else "remove it from them, or "
        raise ApiError(400, f"API {api.apiName} is in packages {names} (their subscribers use it); {hint}"
                            "use forceDelete=true")
    for package, revision in packages:
        package.apiIds = [i for i in package.apiIds if i != api_id]
        await tx.update("package", package.id, package_body(package), revision, name=package.name)
    for app in apps:
        app.apiIds = [i for i in app.apiIds if i != api_id]
        row = await tx.get("application", app.id)
        assert row is not None
        await tx.update("application", app.id, app.model_dump(mode="json"), row.revision, name=app.name)
    for action in await _actions_of(tx, api):
        await tx.delete("policyAction", action.id)
    for pid in api.policies:
        await tx.delete("policy", pid)
    await tx.delete("api_source", api_id)
    await tx.delete("api_name", f"{api.apiName}\n{api.apiVersion}")
    await tx.delete("api", api_id)
    if api.federation:
        await ingest.forget_api(tx, str(api.federation.get("integrationId")), api_id)
    from portico.admin.scopes import forget_api

    await forget_api(tx, api_id)


async def delete_api(request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        await _delete_one(request, tx, request.path_params["apiId"], bool_param(request, "forceDelete"))
    ctx.notify_change()
    return Response(status_code=204)


async def delete_apis(request: Request) -> Response:
    ids = list(dict.fromkeys(ids_param(request, "apiIds") or ()))  # an id named twice is deleted once
    if not ids:
        raise ApiError(400, "query parameter 'apiIds' is required")
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        for api_id in ids:
            await _delete_one(request, tx, api_id, bool_param(request, "forceDelete"))
    ctx.notify_change()
    return Response(status_code=204)


async def _set_active(request: Request, active: bool) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        api, revision = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        if api.isActive == active:
            state = "active" if active else "inactive"
            raise ApiError(400, f"API {api.apiName} {api.apiVersion} is already {state}")
        if active and api.federation:
            where = (api.federation.get("connectionDetails") or {}).get("invokeUrl") or "its provider"
            raise ApiError(400, f"API {api.apiName} {api.apiVersion} is federated from "
                                f"{api.federation.get('provider', 'another gateway')} and served at {where}; "
                                "Portico does not proxy it")
        if active and not _has_enabled_operations(api):
            raise ApiError(400, f"API {api.apiName} has no enabled operations to expose")
        api.isActive = active
        api.lastModified = now_ms()
        await save_api(tx, api, revision)
        versions = await versions_of(tx, api.apiName)
    ctx.notify_change()
    return json_response(api_response(api, versions))


def _has_enabled_operations(api: Api) -> bool:
    from portico.specs import operations

    return bool(operations(api.apiDefinition))


async def activate_api(request: Request) -> Response:
    return await _set_active(request, True)


async def deactivate_api(request: Request) -> Response:
    return await _set_active(request, False)


async def get_versions(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        api, _ = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        versions = await versions_of(tx, api.apiName)
        shown = await teams.only_visible(request, tx, versions)
    # Every version number is listed (the guide: visible and invisible); details only of visible ones.
    return json_response({"apiResponse": [api_response(v)["apiResponse"] for v in shown],
                          "versions": versions_list(versions)})


async def create_version(request: Request) -> Response:
    ctx = context_of(request)
    body = await read_object(request)
    new_version = body.get("newApiVersion")
    if not isinstance(new_version, str) or not new_version.strip():
        raise ApiError(400, "field 'newApiVersion' is required and must be a string")
    new_version = new_version.strip()
    retain = body.get("retainApplications", False)
    if not isinstance(retain, bool):
        raise ApiError(400, "field 'retainApplications' must be a boolean")
    async with ctx.store.transaction() as tx:
        api, _ = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        if api.federation:
            raise ApiError(400, f"API {api.apiName} {api.apiVersion} is federated from "
                                f"{api.federation.get('provider', 'another gateway')}: its versions come from there")
        versions = await versions_of(tx, api.apiName)
        if versions[-1].id != api.id:
            raise ApiError(400, "a new version can be created only from the latest version of the API")
        if any(v.apiVersion == new_version for v in versions):
            raise ApiError(409, f"version {new_version!r} of API {api.apiName} already exists")
        copy = await _copy_api(tx, api, new_version)
        if retain:
            for app in await _registered_apps(tx, api.id):
                app.apiIds.append(copy.id)
                row = await tx.get("application", app.id)
                assert row is not None
                await tx.update("application", app.id, app.model_dump(mode="json"), row.revision, name=app.name)
        versions = await versions_of(tx, api.apiName)
    ctx.notify_change()
    return json_response(api_response(copy, versions))


async def _copy_api(tx: StoreTransaction, api: Api, version: str) -> Api:
    policy_ids = []
    for pid in api.policies:
        row = await tx.get("policy", pid)
        if row is None:
            continue
        policy = Policy.model_validate(row.body)
        policy.id = new_id()
        for stage in policy.policyEnforcements:
            for enf in stage.enforcements:
                arow = await tx.get("policyAction", enf.enforcementObjectId)
                if arow is None:
                    continue
                action = PolicyAction.model_validate(arow.body)
                action.id = new_id()
                enf.enforcementObjectId = action.id
                await tx.insert("policyAction", action.id, action.model_dump(mode="json"), name=action.templateKey)
        await tx.insert("policy", policy.id, policy.model_dump(mode="json", by_alias=True))
        policy_ids.append(policy.id)
    ts = now_ms()
    copy = api.model_copy(update={
        "id": new_id(), "apiVersion": version, "policies": policy_ids, "isActive": False,
        "creationDate": ts, "lastModified": ts, "systemVersion": 1,
    })
    await save_api(tx, copy, None)
    source = await tx.get("api_source", api.id)
    if source is not None:
        await tx.insert("api_source", copy.id, source.body)
    return copy


async def api_applications(request: Request) -> Response:
    """Applications registered to the API; those outside the caller's teams by id and name only."""
    async with context_of(request).store.read() as tx:
        api, _ = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        apps = await _registered_apps(tx, api.id)
        shown = {a.id for a in await teams.only_visible(request, tx, apps)}
    body = applications_response(apps)
    body["applications"] = [b if b["id"] in shown else {"id": b["id"], "name": b["name"]}
                            for b in body["applications"]]
    return json_response(body)


async def api_source(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        api, _ = await load_api(tx, request.path_params["apiId"])
        await teams.require_visible(request, tx, api, "API", api.id)
        row = await tx.get("api_source", api.id)
    if row is None:
        return json_response(render(api.apiDefinition, "openapi"))
    text: str = row.body["text"]
    stripped = text.lstrip()
    media = "application/json" if stripped.startswith(("{", "[")) else "application/yaml"
    try:
        orjson.loads(text) if media == "application/json" else None
    except orjson.JSONDecodeError:
        media = "text/plain"
    return Response(text.encode(), media_type=media)


routes = [
    Route("/apis", create_api, methods=["POST"]),
    Route("/apis", list_apis, methods=["GET"]),
    Route("/apis", delete_apis, methods=["DELETE"]),
    Route("/apis/{apiId}", get_api, methods=["GET"]),
    Route("/apis/{apiId}", update_api, methods=["PUT"]),
    Route("/apis/{apiId}", delete_api, methods=["DELETE"]),
    Route("/apis/{apiId}/activate", activate_api, methods=["PUT"]),
    Route("/apis/{apiId}/deactivate", deactivate_api, methods=["PUT"]),
    Route("/apis/{apiId}/versions", get_versions, methods=["GET"]),
    Route("/apis/{apiId}/versions", create_version, methods=["POST"]),
    Route("/apis/{apiId}/applications", api_applications, methods=["GET"]),
    Route("/apis/{apiId}/source", api_source, methods=["GET"]),
]
