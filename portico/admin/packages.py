"""``/packages`` and ``/plans`` (APIGatewayMonetizationSwagger.json).

A plan's rate limit and quota are policy actions on the two policies created with the plan
(``policies[0]`` and ``quota.enforcementPolicy``; stage keys ``throttle``/``monitorSLA``).
Activating a package makes its APIs identify applications by API key and enforce plans (the
gateway's packages snapshot part); ``policyIds`` names the package's IAM policy."""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import federated, teams
from portico.admin.common import json_response, read_object, str_list
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.domain.package import Cost, Package, Plan
from portico.domain.policy import LocalizedText, Policy, PolicyAction
from portico.federation import ingest
from portico.store import StoreTransaction
from portico.wire.packages import package_body, plan_body


def _now() -> int:
    return int(time.time() * 1000)


def _text(data: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"field '{key}' is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        kind = "a non-empty string" if required else "a string"
        raise ApiError(400, f"field '{key}' must be {kind}")
    return value


def _object(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise ApiError(400, f"field '{key}' must be an object")
    return value


async def load_package(tx: StoreTransaction, package_id: str) -> tuple[Package, int]:
    row = await tx.get("package", package_id)
    if row is None:
        raise not_found("package", package_id)
    return Package.model_validate(row.body), row.revision


async def load_plan(tx: StoreTransaction, plan_id: str) -> tuple[Plan, int]:
    row = await tx.get("plan", plan_id)
    if row is None:
        raise not_found("plan", plan_id)
    return Plan.model_validate(row.body), row.revision


async def _visible_package(request: Request, tx: StoreTransaction, package_id: str) -> tuple[Package, int]:
    package, revision = await load_package(tx, package_id)
    await teams.require_visible(request, tx, package, "package", package.id)
    return package, revision


async def _visible_plan(request: Request, tx: StoreTransaction, plan_id: str) -> tuple[Plan, int]:
    plan, revision = await load_plan(tx, plan_id)
    await teams.require_visible(request, tx, plan, "plan", plan.id)
    return plan, revision


async def _subscribers(tx: StoreTransaction, package_id: str | None = None, plan_id: str | None = None) -> int:
    count = 0
    for row in await tx.list("subscription"):
        if (package_id is None or row.body.get("packageId") == package_id) and (
            plan_id is None or row.body.get("planId") == plan_id
        ):
            count += 1
    return count


# -- packages ---------------------------------------------------------------------------------


async def _apply_package(request: Request, tx: StoreTransaction, package: Package, data: dict[str, Any],
                         old: Package | None) -> None:
    for key in ("name", "description", "version", "icon"):
        value = _text(data, key, required=key == "name" and old is None)
        if value is not None:
            setattr(package, key, value.strip() if key == "name" else value)
    if "tags" in data:
        package.tags = str_list(data, "tags")
    fields = _object(data, "customFields")
    if fields is not None:
        package.customFields = fields
    if "apiIds" in data:
        api_ids = list(dict.fromkeys(str_list(data, "apiIds")))
        for api_id in api_ids:
            if await tx.get("api", api_id) is None:
                raise ApiError(400, f"unknown API id {api_id!r} in 'apiIds'")
        kept = old.apiIds if old else []
        await teams.require_visible_ids(request, tx, "api", [i for i in api_ids if i not in kept], "apiIds")
        package.apiIds = api_ids
    if "planIds" in data:
        plan_ids = list(dict.fromkeys(str_list(data, "planIds")))
        for plan_id in plan_ids:
            if await tx.get("plan", plan_id) is None:
                raise ApiError(400, f"unknown plan id {plan_id!r} in 'planIds'")
        kept = old.planIds if old else []
        await teams.require_visible_ids(request, tx, "plan", [i for i in plan_ids if i not in kept], "planIds")
        for removed in set(old.planIds if old else ()) - set(plan_ids):
            if await _subscribers(tx, package.id, removed):
                raise ApiError(400, f"plan {removed!r} has subscribers in this package and cannot be removed")
        package.planIds = plan_ids


async def _iam_policy(tx: StoreTransaction, package: Package) -> str:
    """The package's IAM policy (API-key identification), as listed in ``policyIds``."""
    action = PolicyAction(id=str(uuid.uuid4()), templateKey="evaluatePolicy", names=[
        LocalizedText(value="Identify & Authorize")], parameters=[
        {"templateKey": "logicalConnector", "values": ["OR"]},
        {"templateKey": "IdentificationRule", "parameters": [
            {"templateKey": "identificationType", "values": ["apiKey"]},
            {"templateKey": "applicationLookup", "values": ["global"]}]}])
    policy = Policy(id=str(uuid.uuid4()), names=[LocalizedText(value=f"IAM policy for package {package.name}")],
                    policyScope="PACKAGE", policyEnforcements=[{"stageKey": "IAM", "enforcements": [
                        {"enforcementObjectId": action.id, "order": "0"}]}])  # type: ignore[list-item]
    await tx.insert("policyAction", action.id, action.model_dump(mode="json"), name=action.templateKey)
    await tx.insert("policy", policy.id, policy.model_dump(mode="json", by_alias=True))
    return policy.id


async def create_package(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="package")
    async with ctx.store.transaction() as tx:
        package = Package(id=str(uuid.uuid4()), name="x", creationDate=_now(), modifiedDate=_now())
        await _apply_package(request, tx, package, data, None)
        package.teams = await teams.teams_for_new(request, tx, "package", package_body(package), data.get("teams"))
        package.policyIds = [await _iam_policy(tx, package)]
        await tx.insert("package", package.id, package_body(package), name=package.name)
    ctx.notify_change()
    return json_response({"packageResponse": {"id": package.id, "status": "CREATED",
                                              "description": "Package Created", "package": package_body(package)}},
                         status=201)


async def list_packages(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        rows = await teams.list_visible(request, tx, "package")
    return json_response({"packageResponse": [package_body(Package.model_validate(r.body)) for r in rows]})


async def get_package(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        package, _ = await _visible_package(request, tx, request.path_params["packageId"])
    return json_response({"packageResponse": package_body(package)})


async def update_package(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="package")
    if "active" in data:
        raise ApiError(400, "field 'active' cannot be changed here; use /packages/{id}/activate or /deactivate")
    async with ctx.store.transaction() as tx:
        package, revision = await _visible_package(request, tx, request.path_params["packageId"])
        old = package.model_copy(deep=True)
        await _apply_package(request, tx, package, data, old)
        if package.federation:
            await federated.refuse_changes(tx, f"package {package.name!r}", package.federation,
                                           federated.changed(old, package, ingest.PACKAGE_OWNED))
        package.modifiedDate = _now()
        package.teams = await teams.teams_after_update(tx, "package", package_body(package), package.teams)
        await tx.update("package", package.id, package_body(package), revision, name=package.name)
    ctx.notify_change()
    return json_response({"packageResponse": package_body(package)})


async def delete_package(request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        package, _ = await _visible_package(request, tx, request.path_params["packageId"])
        if package.federation:
            await federated.refuse_delete(tx, f"package {package.name!r}", package.federation,
                                          "each ingestion lists the integration's APIs and plans in it")
        if await _subscribers(tx, package.id):
            raise ApiError(400, f"package {package.id!r} has subscriptions; delete them first")
        for policy_id in package.policyIds:
            row = await tx.get("policy", policy_id)
            if row is not None:
                for action_id in Policy.model_validate(row.body).action_ids():
                    await tx.delete("policyAction", action_id)
                await tx.delete("policy", policy_id)
        await tx.delete("package", package.id)
    ctx.notify_change()
    return Response(status_code=204)


async def _set_active(request: Request, active: bool) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        package, revision = await _visible_package(request, tx, request.path_params["packageId"])
        if active and (not package.apiIds or not package.planIds):
            raise ApiError(400, "a package needs at least one API and one plan to be activated")
        if package.active == active:
            raise ApiError(400, f"package {package.id!r} is already {'active' if active else 'inactive'}")
        package.active, package.modifiedDate = active, _now()
        await tx.update("package", package.id, package_body(package), revision, name=package.name)
    ctx.notify_change()
    return json_response({"packageResponse": package_body(package)})


async def activate_package(request: Request) -> Response:
    return await _set_active(request, True)


async def deactivate_package(request: Request) -> Response:
    return await _set_active(request, False)


async def package_apis(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        package, _ = await _visible_package(request, tx, request.path_params["packageId"])
        # only the APIs the caller can see (the guide: users view the APIs of their teams)
        rows = await teams.list_visible(request, tx, "api", ids=package.apiIds) if package.apiIds else []
    apis = [{"id": r.id, "apiName": r.body.get("apiName"), "apiVersion": r.body.get("apiVersion"),
             "isActive": r.body.get("isActive", False)} for r in rows]
    return json_response({"apiResponse": apis})


async def package_plans(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        package, _ = await _visible_package(request, tx, request.path_params["packageId"])
        rows = await teams.list_visible(request, tx, "plan", ids=package.planIds) if package.planIds else []
        packages = [Package.model_validate(r.body) for r in await tx.list("package")]
    plans = [Plan.model_validate(r.body) for r in rows]
    return json_response({"planResponse": [plan_body(p, _package_ids(p, packages)) for p in plans]})


# -- plans ------------------------------------------------------------------------------------


def _package_ids(plan: Plan, packages: list[Package]) -> list[str]:
    return [p.id for p in packages if plan.id in p.planIds]


def _apply_plan(plan: Plan, data: dict[str, Any], creating: bool) -> None:
    for key in ("name", "description", "version", "icon"):
        value = _text(data, key, required=key == "name" and creating)
        if value is not None:
            setattr(plan, key, value.strip() if key == "name" else value)
    for wire, attr in (("License", "license"), ("license", "license"), ("Terms", "terms"), ("terms", "terms")):
        value = _text(data, wire)
        if value is not None:
            setattr(plan, attr, value)
    cost = _object(data, "cost")
    if cost is not None:
        try:
            plan.cost = Cost.model_validate(cost)
        except ValidationError as exc:
            raise ApiError(400, f"field 'cost': {exc.errors()[0]['msg']}") from None
    fields = _object(data, "customFields")
    if fields is not None:
        plan.customFields = fields
    if "tags" in data:
        plan.tags = str_list(data, "tags")
    for flag in ("deprecated", "isProtected"):
        if flag in data:
            if not isinstance(data[flag], bool):
                raise ApiError(400, f"field '{flag}' must be true or false")
            setattr(plan, flag, data[flag])


async def _plan_policy(tx: StoreTransaction, name: str) -> str:
    policy = Policy(id=str(uuid.uuid4()), names=[LocalizedText(value=name)], policyScope="PLAN")
    await tx.insert("policy", policy.id, policy.model_dump(mode="json", by_alias=True))
    return policy.id


async def create_plan(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="plan")
    plan = Plan(id=str(uuid.uuid4()), name="x", creationDate=_now(), modifiedDate=_now())
    _apply_plan(plan, data, creating=True)
    async with ctx.store.transaction() as tx:
        plan.teams = await teams.teams_for_new(request, tx, "plan", plan_body(plan, []), data.get("teams"))
        plan.policies = [await _plan_policy(tx, f"Rate limit of plan {plan.name}")]
        plan.quota = {"enforcementPolicy": await _plan_policy(tx, f"Quota of plan {plan.name}")}
        await tx.insert("plan", plan.id, plan.model_dump(mode="json"), name=plan.name)
    ctx.notify_change()
    return json_response({"planResponse": plan_body(plan, [])}, status=201)


async def list_plans(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        plans = [Plan.model_validate(r.body) for r in await teams.list_visible(request, tx, "plan")]
        packages = [Package.model_validate(r.body) for r in await tx.list("package")]
    return json_response({"planResponse": [plan_body(p, _package_ids(p, packages)) for p in plans]})


async def get_plan(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        plan, _ = await _visible_plan(request, tx, request.path_params["planId"])
        packages = [Package.model_validate(r.body) for r in await tx.list("package")]
    return json_response({"planResponse": plan_body(plan, _package_ids(plan, packages))})


async def update_plan(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request, envelope="plan")
    async with ctx.store.transaction() as tx:
        plan, revision = await _visible_plan(request, tx, request.path_params["planId"])
        before = plan.model_copy(deep=True)
        _apply_plan(plan, data, creating=False)
        if plan.federation:
            await federated.refuse_changes(tx, f"plan {plan.name!r}", plan.federation,
                                           federated.changed(before, plan, ingest.PLAN_OWNED))
        plan.modifiedDate = _now()
        plan.teams = await teams.teams_after_update(tx, "plan", plan_body(plan, []), plan.teams)
        await tx.update("plan", plan.id, plan.model_dump(mode="json"), revision, name=plan.name)
        packages = [Package.model_validate(r.body) for r in await tx.list("package")]
    ctx.notify_change()
    return json_response({"planResponse": plan_body(plan, _package_ids(plan, packages))})


async def delete_plan(request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.store.transaction() as tx:
        plan, _ = await _visible_plan(request, tx, request.path_params["planId"])
        if plan.federation:
            await federated.refuse_delete(tx, f"plan {plan.name!r}", plan.federation,
                                          "it is removed, with its subscriptions, when its usage plan is gone "
                                          "there and an ingestion of all APIs runs")
        users = [r.id for r in await tx.list("package") if plan.id in r.body.get("planIds", [])]
        if users:
            raise ApiError(400, f"plan {plan.id!r} belongs to packages {users}; remove it from them first")
        for policy_id in [*plan.policies, *plan.quota.values()]:
            row = await tx.get("policy", policy_id)
            if row is not None:
                for action_id in Policy.model_validate(row.body).action_ids():
                    await tx.delete("policyAction", action_id)
                await tx.delete("policy", policy_id)
        await tx.delete("plan", plan.id)
    ctx.notify_change()
    return Response(status_code=204)


routes = [
    Route("/packages", create_package, methods=["POST"]),
    Route("/packages", list_packages, methods=["GET"]),
    Route("/packages/{packageId}", get_package, methods=["GET"]),
    Route("/packages/{packageId}", update_package, methods=["PUT"]),
    Route("/packages/{packageId}", delete_package, methods=["DELETE"]),
    Route("/packages/{packageId}/activate", activate_package, methods=["PUT"]),
    Route("/packages/{packageId}/deactivate", deactivate_package, methods=["PUT"]),
    Route("/packages/{packageId}/apis", package_apis, methods=["GET"]),
    Route("/packages/{packageId}/plans", package_plans, methods=["GET"]),
    Route("/plans", create_plan, methods=["POST"]),
    Route("/plans", list_plans, methods=["GET"]),
    Route("/plans/{planId}", get_plan, methods=["GET"]),
    Route("/plans/{planId}", update_plan, methods=["PUT"]),
    Route("/plans/{planId}", delete_plan, methods=["DELETE"]),
]
