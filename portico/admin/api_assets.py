"""Building and changing API assets: an API with its default policy, actions and source.

Everything here runs inside the caller's store transaction, so an API and the
assets created with it commit together or not at all."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import UploadFile
from starlette.requests import Request

from portico.admin.common import read_object
from portico.admin.config_store import extended_setting
from portico.admin.errors import ApiError, not_found
from portico.domain.api import Api, ApiSource, NativeEndpoint
from portico.domain.policy import Enforcement, LocalizedText, Policy, PolicyAction, StageEnforcements
from portico.specs import ImportedSpec, SpecError, fetch_spec, import_spec, render
from portico.specs.normalize import source_format_of
from portico.store import Store, StoreTransaction

MAX_SPEC_BYTES = 10 * 1024 * 1024
RESOURCE_PATH = "${sys:resource_path}"
SPEC_TYPES = {"openapi", "swagger"}


def new_id() -> str:
    return str(uuid.uuid4())


def now_ms() -> int:
    return int(time.time() * 1000)


async def load_api(tx: StoreTransaction, api_id: str) -> tuple[Api, int]:
    row = await tx.get("api", api_id)
    if row is None:
        raise not_found("API", api_id)
    return Api.model_validate(row.body), row.revision


def check_name_and_version(name: str, version: str) -> None:
    for field, value in (("apiName", name), ("apiVersion", version)):
        if not value:
            raise ApiError(400, f"field '{field}' must not be empty")
        if "/" in value or len(value) > 255 or any(ord(c) < 32 for c in value):
            raise ApiError(400, f"field '{field}' must be at most 255 characters without '/' or control characters")


async def claim_name(tx: StoreTransaction, name: str, version: str) -> None:
    """Reserve (name, version) in this transaction: a concurrent create of the same pair conflicts."""
    from portico.store import ConflictError

    try:
        await tx.insert("api_name", f"{name}\n{version}", {"name": name, "version": version})
    except ConflictError:
        raise ApiError(409, f"an API named {name!r} with version {version!r} already exists") from None


async def save_api(tx: StoreTransaction, api: Api, revision: int | None) -> None:
    body = api.model_dump(mode="json")
    if revision is None:
        check_name_and_version(api.apiName, api.apiVersion)
        await claim_name(tx, api.apiName, api.apiVersion)
        await tx.insert("api", api.id, body, name=api.apiName, version=api.apiVersion)
        if not api.federation:
            from portico.admin.scopes import create_default_scope

            await create_default_scope(tx, api.id, api.apiName, api.apiVersion)
    else:
        await tx.update("api", api.id, body, revision, name=api.apiName, version=api.apiVersion)


async def versions_of(tx: StoreTransaction, name: str) -> list[Api]:
    rows = await tx.list("api", name=name)
    return sorted((Api.model_validate(r.body) for r in rows), key=lambda a: (a.creationDate, a.id))


# -- reading a spec from the request ---------------------------------------------------------------


class SpecInput:
    """What a create/update request carries besides the document itself."""

    def __init__(self, raw: bytes | None, fields: dict[str, Any], file_name: str = "") -> None:
        self.raw = raw
        self.fields = fields
        self.file_name = file_name

    def field(self, key: str) -> str:
        value = self.fields.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ApiError(400, f"field '{key}' must be a string, got {type(value).__name__}")
        return value.strip()


async def read_spec_input(request: Request, allow_empty: bool = False) -> SpecInput:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        return await _multipart_input(request)
    data = await read_object(request)
    return await _json_input(data, allow_empty)


async def _multipart_input(request: Request) -> SpecInput:
    try:
        form = await request.form(max_files=1, max_fields=50, max_part_size=MAX_SPEC_BYTES)
    except Exception as exc:  # python-multipart / starlette raise several types for broken bodies
        raise ApiError(400, f"malformed multipart body: {exc}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "multipart field 'file' (the API definition file) is required")
    raw = await upload.read(MAX_SPEC_BYTES + 1)
    if len(raw) > MAX_SPEC_BYTES:
        raise ApiError(413, f"API definition file larger than {MAX_SPEC_BYTES} bytes")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return SpecInput(raw, fields, upload.filename or "")


async def _json_input(data: dict[str, Any], allow_empty: bool) -> SpecInput:
    url = data.get("url")
    definition = data.get("apiDefinition")
    if url is not None:
        if not isinstance(url, str) or not url:
            raise ApiError(400, "field 'url' must be a non-empty string")
        try:
            raw: bytes | None = await fetch_spec(url, max_bytes=MAX_SPEC_BYTES)
        except SpecError as exc:
            raise ApiError(400, str(exc)) from None
        return SpecInput(raw, data)
    if definition is not None:
        if not isinstance(definition, dict):
            raise ApiError(400, "field 'apiDefinition' must be a JSON object")
        return SpecInput(_definition_document(definition, data.get("type")), data)
    if allow_empty:
        return SpecInput(None, data)
    raise ApiError(400, "one of 'url', 'apiDefinition' (JSON) or a multipart 'file' is required")


def _definition_document(definition: dict[str, Any], declared: Any) -> bytes:
    """An inline definition is either a full OpenAPI/Swagger document or our normalized model.

    The model is rendered in the format the request names, else in its own source format, so a
    Swagger 2 API read back and sent again stays a Swagger 2 API."""
    import orjson

    if "openapi" in definition or "swagger" in definition:
        return orjson.dumps(definition)
    if not isinstance(definition.get("paths", {}), dict):
        raise ApiError(400, "apiDefinition.paths must be an object")
    model = {"info": {"title": "", "version": ""}, **definition}
    fmt = declared.strip().lower() if isinstance(declared, str) else ""
    try:
        document = render(model, fmt if fmt in SPEC_TYPES else source_format_of(model))
    except (SpecError, KeyError, TypeError, AttributeError) as exc:
        raise ApiError(400, f"apiDefinition is not a usable API definition: {exc}") from None
    return orjson.dumps(document)


async def parse_spec(store: Store, spec_in: SpecInput) -> ImportedSpec:
    """Parse and validate outside any transaction: a big spec takes a while, in a worker thread."""
    assert spec_in.raw is not None
    declared = spec_in.field("type").lower() or None
    if declared == "rest":  # the reference's "create from scratch" names the API type, not the format
        declared = None
    if declared is not None and declared not in SPEC_TYPES:
        raise ApiError(400, f"field 'type' must be one of {sorted(SPEC_TYPES | {'rest'})}, got {declared!r}")
    async with store.read() as tx:
        validate = (await extended_setting(tx, "openAPIImporterValidation")).lower() == "true"
    try:
        return await asyncio.to_thread(import_spec, spec_in.raw, declared, validate)
    except SpecError as exc:
        raise ApiError(400, f"invalid API definition: {exc}") from None


# -- default policy ---------------------------------------------------------------------------------


def _action(template: str, name: str, parameters: list[dict[str, Any]]) -> PolicyAction:
    return PolicyAction(
        id=new_id(), names=[LocalizedText(value=name)], templateKey=template, parameters=parameters, active=False
    )


def routing_uri(native: str) -> str:
    return native.rstrip("/") + "/" + RESOURCE_PATH


def default_policy(api_id: str, api_name: str, native: str | None) -> tuple[Policy, list[PolicyAction]]:
    """The policy a new API starts with: HTTP/HTTPS entry and straight-through routing."""
    actions = [_action("entryProtocolPolicy", "Enable HTTP / HTTPS",
                       [{"templateKey": "protocol", "values": ["http", "https"]}])]
    stages = [StageEnforcements(stageKey="transport", enforcements=[Enforcement(enforcementObjectId=actions[0].id)])]
    if native:
        routing = _action("straightThroughRouting", "Straight Through Routing", [
            {"templateKey": "endpointUri", "values": [routing_uri(native)]},
            {"templateKey": "method", "values": ["CUSTOM"]},
        ])
        actions.append(routing)
        stages.append(StageEnforcements(stageKey="routing", enforcements=[Enforcement(enforcementObjectId=routing.id)]))
    policy = Policy(
        id=new_id(),
        names=[LocalizedText(value=f"Default Policy for API {api_name}")],
        policyEnforcements=stages,
        policyScope="SERVICE",
    )
    return policy, actions


async def write_policy_assets(tx: StoreTransaction, policy: Policy, actions: list[PolicyAction]) -> None:
    for action in actions:
        await tx.insert("policyAction", action.id, action.model_dump(mode="json"), name=action.templateKey)
    await tx.insert("policy", policy.id, policy.model_dump(mode="json", by_alias=True))


def absolute_endpoints(spec: ImportedSpec) -> list[str]:
    """The http(s) base URLs with a host ("http:///v1" has none: it cannot be routed to)."""
    out = []
    for url in spec.native_endpoints:
        try:
            parts = urlsplit(url)
            usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number, or out of range
            usable = False
        if usable:
            out.append(url)
    return out


def build_api(
    spec: ImportedSpec, spec_in: SpecInput, api_id: str, policy_id: str, name: str, version: str
) -> Api:
    ts = now_ms()
    return Api(
        id=api_id,
        apiName=name,
        apiVersion=version,
        apiDescription=spec_in.field("apiDescription") or spec.description,
        apiDefinition=spec.definition,
        nativeEndpoint=[NativeEndpoint(uri=u) for u in absolute_endpoints(spec)],
        policies=[policy_id],
        maturityState=spec_in.field("maturityState"),
        sourceFormat=spec.source_format,
        creationDate=ts,
        lastModified=ts,
    )


def source_of(spec: ImportedSpec, spec_in: SpecInput) -> ApiSource:
    return ApiSource(text=spec.source_text, format=spec.source_format, fileName=spec_in.file_name)
