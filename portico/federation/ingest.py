"""Ingestion: the APIs an agent sends (INGEST batches) become catalogue assets.

Each provider API (one AWS REST API x stage) becomes an ``api`` asset with a deterministic id,
``uuid5(integrationId, uniqueId)``, so re-ingestion updates in place. Its ``apiDefinition`` is
the provider's OpenAPI/Swagger page normalized by :mod:`portico.specs`; its ``federation`` field
says where it lives::

    {"integrationId", "provider", "uniqueId", "connectionDetails", "removedFromProvider",
     "usagePlanIds", "lastIngested"}

Federated APIs are never proxied (``isActive`` stays false; the gateway answers 404 naming the
invoke URL). One ``package`` per integration (id ``uuid5(integrationId, "package")``) lists its
APIs and plans; one ``plan`` per usage plan (id ``uuid5(integrationId, usagePlanId)``). A
federated plan carries no Portico rate-limit or quota policy: the provider enforces it, so its
limits are kept as structured data in the plan's ``federation.limits``
(``rateLimit``/``burstLimit``/``quotaLimit``/``quotaPeriod``/``quotaOffset``) and described in
its ``description``.

Each batch is written in one store transaction. Once a job's last batch is in, a *complete*
ingestion (every API, and a discovery without errors) applies :func:`mark_removed` and
:func:`remove_plans` against what the discovery listed; any other removes nothing."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from portico.domain.package import Package
from portico.specs import SpecError, import_spec
from portico.store import ConflictError, StoreTransaction
from portico.store.db import now_ms

INTEGRATION = "integration"
GRANT = "federatedSubscription"  # a subscription's provider key, keyed by application id

# The fields every ingestion writes again (below): the provider's, refused to management writes
# (portico/admin/federated.py). Ingestion keeps the others, which Portico owns.
API_OWNED = ("apiName", "apiVersion", "apiDescription", "type", "isActive", "apiDefinition", "nativeEndpoint",
             "sourceFormat")
PLAN_OWNED = ("name", "description", "version", "tags", "policies", "quota")
PACKAGE_OWNED = ("apiIds", "planIds")  # a union of what was ingested: a removal would come back


def _namespace(integration_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(integration_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"portico:integration:{integration_id}")


def api_id_for(integration_id: str, unique_id: str) -> str:
    return str(uuid.uuid5(_namespace(integration_id), unique_id))


def plan_id_for(integration_id: str, usage_plan_id: str) -> str:
    return str(uuid.uuid5(_namespace(integration_id), usage_plan_id))


def package_id_for(integration_id: str) -> str:
    return str(uuid.uuid5(_namespace(integration_id), "package"))


def federation_of(body: dict[str, Any]) -> dict[str, Any] | None:
    fed = body.get("federation")
    return fed if isinstance(fed, dict) else None


def belongs(body: dict[str, Any], integration_id: str) -> bool:
    fed = federation_of(body)
    return fed is not None and fed.get("integrationId") == integration_id


@dataclass
class Incoming:
    """One provider API, checked and with its definition parsed (outside any transaction)."""

    unique_id: str
    name: str
    version: str
    description: str
    details: dict[str, Any]
    plans: list[dict[str, Any]]
    definition: dict[str, Any]
    source_format: str


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)
    api_ids: set[str] = field(default_factory=set)
    plan_ids: set[str] = field(default_factory=set)


def _parse_one(raw: Any) -> Incoming:
    if not isinstance(raw, dict):
        raise ValueError("an API must be a JSON object")
    values = {k: raw.get(k) for k in ("uniqueId", "name", "version")}
    for key, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"field '{key}' must be a non-empty string")
    details = raw.get("connectionDetails") or {}
    plans = raw.get("plans") or []
    if not isinstance(details, dict) or not isinstance(plans, list):
        raise ValueError("'connectionDetails' must be an object and 'plans' a list")
    plans = [p for p in plans if isinstance(p, dict) and isinstance(p.get("id"), str) and p["id"]]
    definition: dict[str, Any] = {}
    source_format = "openapi"
    for page in raw.get("pages") or []:
        if isinstance(page, dict) and page.get("pageType") == "SWAGGER" and isinstance(page.get("content"), str):
            try:
                spec = import_spec(page["content"].encode(), None, False)
            except SpecError as exc:
                raise ValueError(f"its OpenAPI document cannot be read: {exc}") from None
            definition, source_format = spec.definition, spec.source_format
            break
    name, version = str(values["name"]).strip(), str(values["version"]).strip()
    if "/" in name or "/" in version or len(name) > 255 or len(version) > 255:
        raise ValueError("name and version must be at most 255 characters without '/'")
    return Incoming(str(values["uniqueId"]), name, version, str(raw.get("description") or ""), details, plans,
                    definition, source_format)


async def prepare(apis: list[Any]) -> tuple[list[Incoming], list[str]]:
    """Check the agent's API dicts and parse their definitions in a worker thread."""

    def work() -> tuple[list[Incoming], list[str]]:
        ok, errors = [], []
        for raw in apis:
            try:
                ok.append(_parse_one(raw))
            except ValueError as exc:
                label = raw.get("uniqueId") if isinstance(raw, dict) else None
                errors.append(f"API {label or '?'}: {exc}")
        return ok, errors

    return await asyncio.to_thread(work)


def _plan_description(plan: dict[str, Any]) -> str:
    text = str(plan.get("description") or "")
    traits = ", ".join(str(c) for c in plan.get("characteristics") or [])
    if traits:
        text = f"{text} ({traits}; enforced by the provider)" if text else f"{traits}; enforced by the provider"
    return text


async def _claim(tx: StoreTransaction, name: str, version: str) -> bool:
    try:
        await tx.insert("api_name", f"{name}\n{version}", {"name": name, "version": version})
    except ConflictError:
        return False
    return True


async def _write_api(tx: StoreTransaction, integration: dict[str, Any], item: Incoming, tally: Tally) -> str | None:
    iid = str(integration["id"])
    api_id = api_id_for(iid, item.unique_id)
    row = await tx.get("api", api_id)
    old = row.body if row else {}
    renamed = row is None or (old.get("apiName"), old.get("apiVersion")) != (item.name, item.version)
    if renamed:
        if not await _claim(tx, item.name, item.version):
            tally.errors.append(f"API {item.unique_id}: an API named {item.name!r} with version {item.version!r} "
                                "already exists in Portico; not ingested")
            return None
        if row is not None:
            await tx.delete("api_name", f"{old.get('apiName')}\n{old.get('apiVersion')}")
    ts = now_ms()
    body = {
        **old,
        "id": api_id, "apiName": item.name, "apiVersion": item.version, "apiDescription": item.description,
        "type": "REST", "isActive": False, "apiDefinition": item.definition, "nativeEndpoint": [],
        "policies": old.get("policies", []), "sourceFormat": item.source_format,
        "creationDate": old.get("creationDate", ts), "lastModified": ts,
        "systemVersion": int(old.get("systemVersion", 0)) + 1,
        "federation": {
            "integrationId": iid, "provider": integration.get("provider"), "uniqueId": item.unique_id,
            "connectionDetails": item.details, "removedFromProvider": False,
            "usagePlanIds": [str(p["id"]) for p in item.plans], "lastIngested": ts,
        },
    }
    if row is None:
        await tx.insert("api", api_id, body, name=item.name, version=item.version)
        tally.created += 1
    else:
        await tx.update("api", api_id, body, row.revision, name=item.name, version=item.version)
        tally.updated += 1
    tally.api_ids.add(api_id)
    return api_id


async def _integration_plans(tx: StoreTransaction, integration_id: str) -> dict[str, tuple[dict[str, Any], int]]:
    return {r.id: (r.body, r.revision) for r in await tx.list("plan") if belongs(r.body, integration_id)}


async def _write_plans(tx: StoreTransaction, integration: dict[str, Any], placed: dict[str, Incoming],
                       tally: Tally) -> None:
    """Upsert the usage plans of the batch's APIs and keep each plan's API list exact for them."""
    iid = str(integration["id"])
    existing = await _integration_plans(tx, iid)
    wanted: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for api_id, item in placed.items():
        for plan in item.plans:
            pid = plan_id_for(iid, str(plan["id"]))
            wanted.setdefault(pid, (plan, set()))[1].add(api_id)
    ts = now_ms()
    for pid in set(existing) | set(wanted):
        old, revision = existing.get(pid, ({}, 0))
        fed = federation_of(old) or {}
        apis = [a for a in fed.get("apiIds", []) if a not in placed]
        source, gained = wanted.get(pid, (None, set()))
        apis = sorted(set(apis) | gained)
        if source is None:
            if pid in existing and apis != sorted(fed.get("apiIds", [])):
                body = {**old, "federation": {**fed, "apiIds": apis}, "modifiedDate": ts}
                await tx.update("plan", pid, body, revision, name=str(old.get("name", pid)))
            continue
        details = placed[next(iter(gained))].details
        body = {
            **old,
            "id": pid, "name": str(source.get("name") or source["id"]), "description": _plan_description(source),
            "version": "1.0", "policies": [], "quota": {}, "tags": ["federated", str(integration.get("provider"))],
            "creationDate": old.get("creationDate", ts), "modifiedDate": ts,
            "federation": {
                "integrationId": iid, "provider": integration.get("provider"), "usagePlanId": str(source["id"]),
                "planSecurityType": str(source.get("planSecurityType") or "API_KEY"),
                "limits": source.get("limits") if isinstance(source.get("limits"), dict) else {},
                "characteristics": [str(c) for c in source.get("characteristics") or []],
                "region": details.get("region"), "account": details.get("account"), "apiIds": apis,
                "enforcedBy": "provider",
            },
        }
        if pid in existing:
            await tx.update("plan", pid, body, revision, name=body["name"])
        else:
            await tx.insert("plan", pid, body, name=body["name"])
        tally.plan_ids.add(pid)


async def _write_package(tx: StoreTransaction, integration: dict[str, Any], tally: Tally) -> None:
    iid = str(integration["id"])
    pkg_id = package_id_for(iid)
    row = await tx.get("package", pkg_id)
    ts = now_ms()
    if row is None:
        package = Package(id=pkg_id, name=str(integration.get("name") or iid), active=True, creationDate=ts,
                          description=f"APIs federated from the {integration.get('provider')} integration "
                                      f"{integration.get('name')!r}", tags=["federated"])
    else:
        package = Package.model_validate(row.body)
    package.apiIds = sorted(set(package.apiIds) | tally.api_ids)
    package.planIds = sorted(set(package.planIds) | tally.plan_ids)
    package.modifiedDate = ts
    body = {**(row.body if row else {}), **package.model_dump(mode="json"), "federation": {"integrationId": iid}}
    if row is None:
        await tx.insert("package", pkg_id, body, name=package.name)
    else:
        await tx.update("package", pkg_id, body, row.revision, name=package.name)


async def write_batch(tx: StoreTransaction, integration: dict[str, Any], items: list[Incoming], tally: Tally) -> None:
    """Upsert one INGEST batch: its APIs, their plans and the integration's package."""
    placed: dict[str, Incoming] = {}
    for item in items:
        api_id = await _write_api(tx, integration, item, tally)
        if api_id is not None:
            placed[api_id] = item
    await _write_plans(tx, integration, placed, tally)
    await _write_package(tx, integration, tally)


async def mark_removed(tx: StoreTransaction, integration_id: str, seen: set[str]) -> list[str]:
    """A complete ingestion is over: the integration's APIs its discovery did not list (``seen``:
    the ids of those it listed) are marked ``removedFromProvider`` (kept, not deleted) and leave
    their plans. Returns their ids."""
    removed = []
    for row in await tx.list("api"):
        fed = federation_of(row.body)
        if not belongs(row.body, integration_id) or row.id in seen or fed is None or fed.get("removedFromProvider"):
            continue
        body = {**row.body, "federation": {**fed, "removedFromProvider": True, "usagePlanIds": []},
                "lastModified": now_ms()}
        await tx.update("api", row.id, body, row.revision, name=body.get("apiName"), version=body.get("apiVersion"))
        removed.append(row.id)
    if removed:
        for pid, (body, revision) in (await _integration_plans(tx, integration_id)).items():
            fed = federation_of(body) or {}
            apis = [a for a in fed.get("apiIds", []) if a not in removed]
            if apis != fed.get("apiIds", []):
                await tx.update("plan", pid, {**body, "federation": {**fed, "apiIds": apis}}, revision,
                                name=str(body.get("name", pid)))
    return removed


async def forget_api(tx: StoreTransaction, integration_id: str, api_id: str) -> None:
    """A federated API deleted in Portico leaves its plans (an ingestion of it adds it back)."""
    for pid, (body, revision) in (await _integration_plans(tx, integration_id)).items():
        fed = federation_of(body) or {}
        if api_id in fed.get("apiIds", []):
            apis = [a for a in fed["apiIds"] if a != api_id]
            await tx.update("plan", pid, {**body, "federation": {**fed, "apiIds": apis}}, revision,
                            name=str(body.get("name", pid)))


async def gone_plans(tx: StoreTransaction, integration_id: str, listed: set[str]) -> list[str]:
    """After a complete ingestion: the integration's plans the provider's listing no longer has."""
    return [pid for pid in await _integration_plans(tx, integration_id) if pid not in listed]


async def remove_plans(tx: StoreTransaction, integration_id: str, plan_ids: list[str]) -> None:
    """Delete plans, their subscriptions and the plans' place in the integration's package. An
    application goes with its subscription only when the subscription created it
    (``createdApplication``); one the subscriber brought stays, without the subscription. Provider
    keys must be revoked (or scheduled for revocation) before."""
    if not plan_ids:
        return
    for row in await tx.list("subscription"):
        if row.body.get("planId") in plan_ids:
            await tx.delete("subscription", row.id)
            await tx.delete(GRANT, row.id)
            app = await tx.get("application", row.id)
            if app is None:
                continue
            if row.body.get("createdApplication") is True:
                await tx.delete("application", row.id)
            elif app.body.get("subscription"):
                body = {**app.body, "subscription": False}
                await tx.update("application", app.id, body, app.revision, name=body.get("name"),
                                version=body.get("version"))
    for pid in plan_ids:
        await tx.delete("plan", pid)
    pkg = await tx.get("package", package_id_for(integration_id))
    if pkg is not None:
        body = {**pkg.body, "planIds": [p for p in pkg.body.get("planIds", []) if p not in plan_ids]}
        await tx.update("package", pkg.id, body, pkg.revision, name=body.get("name"))


async def grants_on(tx: StoreTransaction, plan_ids: list[str]) -> list[dict[str, Any]]:
    return [r.body for r in await tx.list(GRANT) if r.body.get("planId") in plan_ids]


async def delete_catalogue(tx: StoreTransaction, integration_id: str) -> None:
    """Delete everything ingested for an integration: its APIs (and their name claims), plans with
    their subscriptions, and its package. Provider keys must be revoked before."""
    plans = list(await _integration_plans(tx, integration_id))
    await remove_plans(tx, integration_id, plans)
    for row in await tx.list("api"):
        if belongs(row.body, integration_id):
            for app in await tx.list("application"):
                if row.id in app.body.get("apiIds", []):
                    body = {**app.body, "apiIds": [a for a in app.body["apiIds"] if a != row.id]}
                    await tx.update("application", app.id, body, app.revision, name=body.get("name"),
                                    version=body.get("version"))
            await tx.delete("api_name", f"{row.body.get('apiName')}\n{row.body.get('apiVersion')}")
            await tx.delete("api", row.id)
    await tx.delete("package", package_id_for(integration_id))


async def integration_plan_ids(tx: StoreTransaction, integration_id: str) -> list[str]:
    return list(await _integration_plans(tx, integration_id))


async def subscribed_plans(tx: StoreTransaction, integration_id: str) -> list[str]:
    """The integration's plans that have subscriptions."""
    plans = set(await _integration_plans(tx, integration_id))
    return sorted({str(r.body.get("planId")) for r in await tx.list("subscription") if r.body.get("planId") in plans})
