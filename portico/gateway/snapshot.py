"""The gateway's read-only view of configuration, rebuilt off the request path.

A :class:`Snapshot` is compiled from the store in one pass (APIs with their
routers and policy chains, application indexes, settings) and swapped in with
one assignment, so a request always sees one consistent configuration."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel

from portico.domain.api import Api
from portico.domain.application import Application, parse_ip_range
from portico.domain.effective_policy import effective_policy, has_method_conditions
from portico.domain.policy import Policy, PolicyAction
from portico.gateway.lookups import HostNames, UserCredentials
from portico.gateway.router import ResourceRouter
from portico.gateway.view import ApiVersions, AppView, CompiledApi, PhasePlan, RuntimeSettings, Services, Snapshot
from portico.policies.base import ConfigError, PolicyHandler, Step, validate_parameters
from portico.policies.registry import STAGE_KEYS, handler_for
from portico.settings import (
    DEFAULT_ERROR_TEMPLATE,
    ERROR_PROCESSING_DEFAULTS,
    EXTENDED_DEFAULTS,
    WATT_DEFAULTS,
    is_true,
)
from portico.store import Store, StoreTransaction

log = logging.getLogger("portico.gateway")
M = TypeVar("M", bound=BaseModel)


SnapshotPart = Callable[[StoreTransaction, "Snapshot"], Awaitable[None]]
_PARTS: list[SnapshotPart] = []
_PARTS_IMPORTED: list[bool] = []


def _import_parts() -> None:
    import importlib
    import pkgutil

    import portico.gateway.parts as parts

    for info in sorted(pkgutil.iter_modules(parts.__path__), key=lambda i: i.name):
        importlib.import_module(f"{parts.__name__}.{info.name}")


def snapshot_part(fn: SnapshotPart) -> SnapshotPart:
    """Register a builder that adds indexes to every snapshot (runs in the snapshot's read
    transaction, after APIs, policies, applications and settings are loaded)."""
    _PARTS.append(fn)
    return fn


class _Compiler:
    """Turns effective policies into handler chains; one handler per (action, stage) per snapshot,
    shared by every chain that uses it (so stateful handlers keep one state)."""

    def __init__(self, policies: dict[str, Policy], actions: dict[str, PolicyAction]) -> None:
        self.policies = policies
        self.actions = actions
        self.globals = sorted((p for p in policies.values() if p.global_ and p.active), key=lambda p: p.id)
        self._handlers: dict[tuple[str, str], PolicyHandler | None] = {}

    def handler(self, api: Api, action_id: str, stage: str) -> PolicyHandler | None:
        key = (action_id, stage)
        if key not in self._handlers:
            self._handlers[key] = self._build(api, action_id, stage)
        return self._handlers[key]

    def _build(self, api: Api, action_id: str, stage: str) -> PolicyHandler | None:
        action = self.actions.get(action_id)
        cls = handler_for(action.templateKey) if action is not None else None
        if action is None or cls is None:
            return None
        if stage not in cls.allowed_stages():
            log.error("API %s: policy action %s cannot run in stage %s", api.apiName, action_id, stage)
            return None
        try:
            config = validate_parameters(cls, action.parameters)
        except ConfigError as exc:  # stored config is validated on write; be defensive on read
            log.error("API %s: skipping policy action %s: %s", api.apiName, action_id, exc)
            return None
        handler = cls(config)
        handler.placed_stage = stage
        handler.action_id = action_id
        return handler

    def chain(self, api: Api, resource: str | None, method: str | None) -> dict[str, list[PolicyHandler]]:
        effective = effective_policy(api, self.policies, self.globals, self.actions, resource, method)
        chain: dict[str, list[PolicyHandler]] = {k: [] for k in STAGE_KEYS}
        for stage, ids in effective.stages.items():
            for action_id in ids:
                handler = self.handler(api, action_id, stage)
                if handler is not None:
                    chain.setdefault(stage, []).append(handler)
        return chain

    def needs_scoping(self, api: Api) -> bool:
        own = any(
            (p := self.policies.get(pid)) is not None and p.policyScope in ("RESOURCE", "OPERATION", "METHOD")
            for pid in api.policies
        )
        return own or any(has_method_conditions(g) for g in self.globals)


def runtime_settings(extended: dict[str, str], watt: dict[str, str], error: dict[str, Any]) -> RuntimeSettings:
    """The settings the gateway consults, parsed once per snapshot."""
    ext = {**EXTENDED_DEFAULTS, **extended}
    wt = {**WATT_DEFAULTS, **watt}
    err = {**ERROR_PROCESSING_DEFAULTS, **error}
    return RuntimeSettings(
        api_key_header=ext["apiKeyHeader"].lower().encode("latin-1"),
        connect_timeout=float(ext["pg.endpoint.connectionTimeout"] or 30),
        read_timeout=float(ext["pg.endpoint.readTimeout"] or 30),
        return_408_for_timeout=is_true(ext["return408ForConnectionTimeout"]),
        strict_resource_matching=is_true(ext["strictResourceMatching"]),
        default_to_oldest_version=is_true(ext["pg.default.enable.oldVersion"]),
        forward_query_params=is_true(ext["forwardQueryParams"]),
        decode_all_delimiters=is_true(ext["decodeAllDelimitersInURI"]),
        ignore_x_forwarded_for=is_true(wt["watt.server.enterprisegateway.ignoreXForwardedForHeader"]),
        send_native_provider_fault=bool(err.get("sendNativeProviderFault")),
        error_template=str(err.get("defaultErrorMessage") or DEFAULT_ERROR_TEMPLATE),
        xml_to_json_keep_string=is_true(ext["xmlToJSONConversion_keepString"]),
    )


def plan_of(chain: dict[str, list[PolicyHandler]]) -> PhasePlan:
    """The phase plan of a policy chain: per phase, only the handlers that take part in it."""
    ordered = [h for stage in STAGE_KEYS for h in chain.get(stage, ())]
    request = tuple(h for h in ordered if h.takes_part("run"))
    return PhasePlan(
        request=request,
        request_steps=_steps(request),
        response=tuple(h for h in ordered if h.takes_part("on_response")),
        fault=tuple(h for h in ordered if h.takes_part("on_fault")),
        complete=tuple(h for h in ordered if h.takes_part("on_complete")),
        needs_response_body=any(h.needs_response_body for h in ordered),
    )


def with_request(plan: PhasePlan, handlers: Iterable[PolicyHandler]) -> PhasePlan:
    """A copy of ``plan`` whose request phase runs ``handlers`` (snapshot parts change plans
    only so: the steps the runtime calls must match the handlers)."""
    request = tuple(handlers)
    return replace(plan, request=request, request_steps=_steps(request))


def _steps(handlers: tuple[PolicyHandler, ...]) -> tuple[tuple[Step, bool], ...]:
    return tuple((h.request_step(), h.needs_request_body) for h in handlers)


def _same(a: dict[str, list[PolicyHandler]], b: dict[str, list[PolicyHandler]]) -> bool:
    return all([id(h) for h in a.get(k, ())] == [id(h) for h in b.get(k, ())] for k in STAGE_KEYS)


def _compile_api(api: Api, compiler: _Compiler) -> CompiledApi:
    chain = compiler.chain(api, None, None)
    router = ResourceRouter.from_paths(api.apiDefinition.get("paths") or {})
    scoped: dict[tuple[str, str], PhasePlan] = {}
    if compiler.needs_scoping(api):
        for resource in router.resources:
            for method in resource.methods:
                specific = compiler.chain(api, resource.template, method)
                if not _same(specific, chain):
                    scoped[(resource.template, method)] = plan_of(specific)
    return CompiledApi(
        id=api.id,
        name=api.apiName,
        version=api.apiVersion,
        active=api.isActive,
        router=router,
        chain=chain,
        created=api.creationDate,
        native_endpoint=api.nativeEndpoint[0].uri if api.nativeEndpoint else "",
        plan=plan_of(chain),
        scoped_plans=scoped,
    )


def _app_view(app: Application) -> AppView:
    return AppView(
        id=app.id, name=app.name, api_key=app.apiKey, key_expires_at=app.apiKeyExpirationDate,
        suspended=app.isSuspended, api_ids=frozenset(app.apiIds),
    )


def _index_apps(snap: Snapshot, apps: Iterable[Application]) -> None:
    for app in apps:
        view = _app_view(app)
        if app.apiKey:
            snap.apps_by_key[app.apiKey] = view
        for ident in app.identifiers:
            for value in ident.value:
                if ident.key == "httpBasicAuth":
                    snap.apps_by_basic_user.setdefault(value, []).append(view)
                elif ident.key == "ipAddressRange":
                    rng = parse_ip_range(value)
                    if rng is not None:
                        snap.apps_by_ip_range.append((rng[0], rng[1], view))
                elif ident.key == "hostNameAddress":
                    snap.apps_by_host[value.strip().lower()] = view


async def _load(tx: StoreTransaction, kind: str) -> list[dict[str, Any]]:
    return [r.body for r in await tx.list(kind)]


class _ModelCache:
    """Validated models of the assets of the last build, reused while their row is unchanged
    (same revision and timestamps): with thousands of applications, validating every one again
    made each configuration change cost a full second of CPU. The models are only read."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, tuple[tuple[int, int, int], Any]]] = {}

    async def load(self, tx: StoreTransaction, kind: str, model: type[M]) -> list[M]:
        old = self._by_kind.get(kind, {})
        new: dict[str, tuple[tuple[int, int, int], Any]] = {}
        out: list[M] = []
        for row in await tx.list(kind):
            stamp = (row.revision, row.created_at, row.updated_at)
            hit = old.get(row.id)
            value = hit[1] if hit is not None and hit[0] == stamp else model.model_validate(row.body)
            new[row.id] = (stamp, value)
            out.append(value)
        self._by_kind[kind] = new  # rows gone since the last build are forgotten
        return out


async def build_snapshot(
    store: Store, hostnames: HostNames | None = None, services: Services | None = None
) -> Snapshot:
    services = services or Services()
    models: _ModelCache = services.get_or_create("snapshot.models", lambda _: _ModelCache())
    revision = await store.config_revision()
    async with store.read(memo=True) as tx:
        apis = await models.load(tx, "api", Api)
        policies = {p.id: p for p in await models.load(tx, "policy", Policy)}
        actions = {a.id: a for a in await models.load(tx, "policyAction", PolicyAction)}
        apps = await models.load(tx, "application", Application)
        users = {b["loginId"]: b["passwordHash"] for b in await _load(tx, "user") if b.get("active", True)}
        settings_row = await tx.get("settings", "settings")
        errors_row = await tx.get("settings", "errorProcessing")
        snap = _assemble(revision, apis, policies, actions, apps, users, settings_row, errors_row,
                               hostnames, services)
        if not _PARTS_IMPORTED:
            _import_parts()
            _PARTS_IMPORTED.append(True)
        for part in _PARTS:
            await part(tx, snap)
    return snap


def _assemble(
    revision: int,
    apis: list[Api],
    policies: dict[str, Policy],
    actions: dict[str, PolicyAction],
    apps: list[Application],
    users: dict[str, str],
    settings_row: Any,
    errors_row: Any,
    hostnames: HostNames | None,
    services: Services | None,
) -> Snapshot:
    stored = settings_row.body if settings_row else {}
    settings = runtime_settings(
        stored.get("extendedKeys", {}), stored.get("wattKeys", {}), errors_row.body if errors_row else {}
    )
    snap = Snapshot(
        revision=revision, settings=settings, apis={}, apis_by_id={}, apps_by_key={},
        apps_by_basic_user={}, apps_by_ip_range=[], apps_by_host={},
        users=UserCredentials(users), hostnames=hostnames or HostNames(), services=services or Services(),
    )
    compiler = _Compiler(policies, actions)
    for api in sorted(apis, key=lambda a: (a.creationDate, a.id)):
        try:
            compiled = _compile_api(api, compiler)
        except Exception:  # one broken API must not stop every other change from deploying
            log.exception("API %s %s (%s) cannot be deployed; skipping it", api.apiName, api.apiVersion, api.id)
            continue
        snap.apis_by_id[api.id] = compiled
        versions = snap.apis.setdefault(api.apiName, ApiVersions())
        versions.by_version[api.apiVersion] = compiled
        versions.ordered.append(compiled)
    _index_apps(snap, apps)
    return snap
