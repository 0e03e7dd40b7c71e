"""``/subscriptions``: an application subscribes to a package and one of its plans.

``POST`` creates the application (``applicationName``) or subscribes an existing one
(``applicationId``, a Portico extension) and returns the API key; ``PUT`` switches package and
plan and resets the quota (counters are keyed on the subscription's ``quotaEpoch``); ``DELETE``
removes the subscription and the application it created. Usage reads the live counters.
``GET /subscriptions/{id}`` shows the keys to holders of "Manage applications" and to the
application's owner; lists always mask them. Federated plans (:mod:`portico.federation.grants`):
one write per application at a time (409 for a concurrent one)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico.admin import teams
from portico.admin.applications import load_app, new_api_key, save_app
from portico.admin.common import int_param, json_response, read_object, require_str
from portico.admin.context import context_of
from portico.admin.errors import ApiError, not_found
from portico.admin.packages import load_package, load_plan
from portico.counters import Counters, CounterUnavailable, counters_of, window_for
from portico.domain.application import Application
from portico.domain.package import Package, Plan, Subscription
from portico.domain.plan_limits import plan_limits, quota_key
from portico.domain.policy import Policy, PolicyAction
from portico.federation import grants
from portico.security.principal import Principal
from portico.security.privileges import MANAGE_APPLICATIONS
from portico.settings import EXTENDED_DEFAULTS
from portico.store import StoreTransaction
from portico.wire.packages import subscription_body


def _now() -> int:
    return int(time.time() * 1000)


async def _load_sub(request: Request, tx: StoreTransaction, app_id: str) -> tuple[Subscription, int]:
    """A subscription is seen by whoever sees its application (team work)."""
    row = await tx.get("subscription", app_id)
    app = await tx.get("application", app_id)
    if app is None or not await teams.is_visible(request, tx, app):
        raise ApiError(404, f"Application Id - {app_id} does not exist")
    if row is None:
        raise ApiError(400, f"Application Id - {app_id} is not a subscription")
    return Subscription.model_validate(row.body), row.revision


async def _package_and_plan(request: Request, tx: StoreTransaction, package_id: str, plan_id: str,
                            field: str) -> tuple[Package, Plan]:
    row = await tx.get("package", package_id)
    if row is None or not await teams.is_visible(request, tx, row):
        raise ApiError(400, f"field '{field}': unknown package {package_id!r}")
    package = Package.model_validate(row.body)
    if not package.active:
        raise ApiError(400, f"Package Id - {package_id} is not active")
    if plan_id not in package.planIds:
        raise ApiError(400, f"plan {plan_id!r} is not a plan of package {package_id!r}")
    plan, _ = await load_plan(tx, plan_id)
    await teams.require_visible_ids(request, tx, "plan", [plan_id], "planId")
    return package, plan


async def create_subscription(request: Request) -> Response:
    ctx = context_of(request)
    data = await read_object(request)
    package_id, plan_id = require_str(data, "packageId"), require_str(data, "planId")
    existing_id = require_str(data, "applicationId", required=False)
    name = require_str(data, "applicationName", required=not existing_id)
    description = require_str(data, "applicationDescription", required=False)
    app_id = existing_id or str(uuid.uuid4())
    fed = await grants.plan_federation(ctx.store, plan_id)
    if fed is None:
        body = await _store_new(request, data, package_id, plan_id, existing_id, app_id, name, description, None)
    else:  # a federated plan: the provider's key first (nothing is stored if it refuses)
        async with grants.exclusive(request, app_id, plan_id, str(fed.get("integrationId"))):
            async with ctx.store.read() as tx:
                await _package_and_plan(request, tx, package_id, plan_id, "packageId")
                if existing_id:
                    app, _ = await load_app(tx, existing_id)
                    await teams.require_visible(request, tx, app, "application", app.id)
                    if await tx.get("subscription", existing_id) is not None:
                        raise ApiError(400, f"application {existing_id!r} already has a subscription; "
                                            "switch it with PUT")
                    name = app.name
            grant = await grants.subscribe(request, fed, plan_id, app_id, name)
            try:
                body = await _store_new(request, data, package_id, plan_id, existing_id, app_id, name, description,
                                        grant)
            except BaseException:
                await grants.undo(request, grant)
                raise
    ctx.notify_change()
    return json_response(body, status=201)


async def _store_new(request: Request, data: dict[str, Any], package_id: str, plan_id: str, existing_id: str,
                     app_id: str, name: str, description: str, grant: dict[str, Any] | None) -> dict[str, Any]:
    async with context_of(request).store.transaction() as tx:
        app, package, plan = await _subscribe(request, tx, data, package_id, plan_id, existing_id, app_id, name,
                                              description)
        await grants.save(tx, grant, app.id)
        return subscription_body(app, package, plan) | await grants.wire(tx, app.id)


async def _subscribe(request: Request, tx: StoreTransaction, data: dict[str, Any], package_id: str, plan_id: str,
                     existing_id: str, app_id: str, name: str, description: str,
                     ) -> tuple[Application, Package, Plan]:
    package, plan = await _package_and_plan(request, tx, package_id, plan_id, "packageId")
    if existing_id:
        app, revision = await load_app(tx, existing_id)
        await teams.require_visible(request, tx, app, "application", app.id)
        if await tx.get("subscription", app.id) is not None:
            raise ApiError(400, f"application {app.id!r} already has a subscription; switch it with PUT")
        app.subscription = True
        await save_app(tx, app, revision)
    else:
        app = Application(id=app_id, name=name.strip(), description=description,
                          apiKey=new_api_key(), created=_now(), subscription=True,
                          owner=require_str(data, "requesterId", required=False, default="Administrator"))
        app.teams = await teams.teams_for_new(request, tx, "application", app.model_dump(mode="json"),
                                              data.get("teams"))
        await save_app(tx, app, None)
    sub = Subscription(applicationId=app.id, packageId=package.id, planId=plan.id, created=_now(),
                       quotaEpoch=_now(), createdApplication=not existing_id)
    await tx.insert("subscription", app.id, sub.model_dump(mode="json"))
    return app, package, plan


async def _details(tx: StoreTransaction, sub: Subscription) -> tuple[Application, Package, Plan]:
    app, _ = await load_app(tx, sub.applicationId)
    package, _ = await load_package(tx, sub.packageId)
    plan, _ = await load_plan(tx, sub.planId)
    return app, package, plan


async def list_subscriptions(request: Request) -> Response:
    package_id, plan_id = request.query_params.get("packageId"), request.query_params.get("planId")
    async with context_of(request).store.read() as tx:
        if package_id:
            await load_package(tx, package_id)
        if plan_id:
            await load_plan(tx, plan_id)
        out = []
        for row in await tx.list("subscription"):
            sub = Subscription.model_validate(row.body)
            if (package_id and sub.packageId != package_id) or (plan_id and sub.planId != plan_id):
                continue
            app, package, plan = await _details(tx, sub)
            if await teams.is_visible(request, tx, app):
                out.append(subscription_body(app, package, plan, mask_key=True)
                           | await grants.wire(tx, app.id, mask=True))
    return json_response(out)


def _sees_keys(request: Request, app: Application) -> bool:
    """The application's keys (Portico's and the provider's) are for holders of "Manage
    applications" and for the application's owner; anyone else who may see it gets them masked."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal is None or principal.holds(MANAGE_APPLICATIONS) or app.owner in (principal.login_id,
                                                                                       principal.user_id)


async def get_subscription(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        sub, _ = await _load_sub(request, tx, request.path_params["applicationId"])
        app, package, plan = await _details(tx, sub)
        mask = not _sees_keys(request, app)
        body = subscription_body(app, package, plan, mask_key=mask) | await grants.wire(tx, app.id, mask=mask)
    return json_response(body)


async def switch_subscription(request: Request) -> Response:
    """Switch package and plan. Into a federated plan: the new provider key first; out of one: the
    new grant (or none) is stored with the old key scheduled for deletion in one transaction, and the
    old key deleted after (a failure there is retried at the integration's health checks, never
    leaving a stored grant on a deleted key)."""
    ctx = context_of(request)
    data = await read_object(request)
    package_id, plan_id = require_str(data, "newPackageId"), require_str(data, "newPlanId")
    app_id = request.path_params["applicationId"]
    async with ctx.store.read() as tx:
        sub, _ = await _load_sub(request, tx, app_id)
        await _package_and_plan(request, tx, package_id, plan_id, "newPackageId")
        old_grant = await grants.grant_of(tx, app_id)
        app, _ = await load_app(tx, app_id)
    fed = await grants.plan_federation(ctx.store, plan_id) if sub.planId != plan_id else None
    if sub.planId == plan_id or (fed is None and old_grant is None):
        body, old_key = await _switch(request, package_id, plan_id, None)
    else:
        integration = str((fed or old_grant or {}).get("integrationId"))
        async with grants.exclusive(request, app_id, plan_id, integration):
            new_grant = await grants.subscribe(request, fed, plan_id, app_id, app.name) if fed is not None else None
            try:
                body, old_key = await _switch(request, package_id, plan_id, (new_grant, old_grant))
            except BaseException:
                if new_grant is not None:
                    await grants.undo(request, new_grant)
                raise
            if old_grant is not None:
                await grants.revoke_retired(request, old_grant)
    await _forget(ctx.extras.get("services"), old_key)
    ctx.notify_change()
    return json_response(body)


async def _switch(request: Request, package_id: str, plan_id: str,
                  federated: tuple[dict[str, Any] | None, dict[str, Any] | None] | None,
                  ) -> tuple[dict[str, Any], str]:
    """The switch's one transaction; ``federated``: the (new, old) grants when either plan is federated."""
    async with context_of(request).store.transaction() as tx:
        sub, revision = await _load_sub(request, tx, request.path_params["applicationId"])
        package, plan = await _package_and_plan(request, tx, package_id, plan_id, "newPackageId")
        old_key = quota_key(sub)
        sub.packageId, sub.planId, sub.quotaEpoch = package.id, plan.id, max(_now(), sub.quotaEpoch + 1)
        await tx.update("subscription", sub.applicationId, sub.model_dump(mode="json"), revision)
        app, _ = await load_app(tx, sub.applicationId)
        if federated is not None:
            new_grant, old_grant = federated
            current = await grants.grant_of(tx, app.id)
            if (current or {}).get("subscriptionId") != (old_grant or {}).get("subscriptionId"):
                raise ApiError(409, f"the subscription of application {app.id} changed meanwhile; reload and retry")
            await grants.save(tx, new_grant, app.id)
            if old_grant is not None:
                await grants.retire(tx, old_grant)
        return subscription_body(app, package, plan) | await grants.wire(tx, app.id), old_key


async def _forget(services: Any, key: str) -> None:
    """Drop the old quota counters (the new epoch already starts from zero; this frees them)."""
    if services is None:
        return
    try:
        await counters_of(services).reset(key)
    except CounterUnavailable:
        pass


async def delete_subscription(request: Request) -> Response:
    """The provider's key goes first: a failure to revoke it leaves the subscription in place. The
    application goes too when the subscription created it; one the subscriber brought stays."""
    ctx = context_of(request)
    app_id = request.path_params["applicationId"]
    async with ctx.store.read() as tx:
        await _load_sub(request, tx, app_id)
        grant = await grants.grant_of(tx, app_id)
    if grant is None:
        sub = await _unsubscribe(request, app_id)
    else:
        async with grants.exclusive(request, app_id, str(grant.get("planId")), str(grant.get("integrationId"))):
            async with ctx.store.read() as tx:
                grant = await grants.grant_of(tx, app_id)
            if grant is not None:
                await grants.revoke(request, grant)
            sub = await _unsubscribe(request, app_id)
    await _forget(ctx.extras.get("services"), quota_key(sub))
    ctx.notify_change()
    return Response(status_code=204)


async def _unsubscribe(request: Request, app_id: str) -> Subscription:
    async with context_of(request).store.transaction() as tx:
        sub, _ = await _load_sub(request, tx, app_id)
        await tx.delete("subscription", sub.applicationId)
        await grants.save(tx, None, sub.applicationId)
        if sub.createdApplication:
            await tx.delete("application", sub.applicationId)
        else:
            app, revision = await load_app(tx, sub.applicationId)
            if app.subscription:
                app.subscription = False
                await save_app(tx, app, revision)
    return sub


# -- usage ------------------------------------------------------------------------------------


async def _usage(tx: StoreTransaction, counters: Counters | None, sub: Subscription,
                 start_day: str) -> dict[str, Any] | None:
    app, package, plan = await _details(tx, sub)
    policies = {r.id: Policy.model_validate(r.body) for r in await tx.list("policy")}
    actions = {r.id: PolicyAction.model_validate(r.body) for r in await tx.list("policyAction")}
    quota = plan_limits(plan, policies, actions).quota
    if quota is None:
        return None
    now = _now()
    window = window_for(now, quota.interval, quota.unit, start_day)
    key = quota_key(sub)
    used = ok = failed = 0
    if counters is not None:
        try:
            used, ok, failed = (await counters.get(key, window), await counters.get(key + ":ok", window),
                                await counters.get(key + ":fail", window))
        except CounterUnavailable:
            raise ApiError(503, "the counter store is unavailable") from None
    left = window.end_ms - now
    return {
        "successCount": ok, "failureCount": failed, "planId": plan.id, "planName": plan.name,
        "packageId": package.id, "packageName": package.name, "applicationId": app.id,
        "applicationName": app.name, "quotaAllowed": quota.count, "usedQuota": used,
        "configuredQuota": f"{quota.count} / {quota.interval} {quota.unit.capitalize()}",
        "quota": f"{quota.count} / {quota.interval} {quota.unit.capitalize()}",
        "interval": str(quota.interval), "intervalUnit": quota.unit, "startTime": window.start_ms,
        "endTime": window.end_ms, "remainingPeriodInMillis": left,
        "remainingPeriod": "Less than 1 Minute left" if left < 60_000 else f"{left // 60_000} Minutes left",
        "startDayOfTheWeek": start_day,
    }


async def _start_day(tx: StoreTransaction) -> str:
    row = await tx.get("settings", "settings")
    stored = row.body.get("extendedKeys", {}) if row else {}
    return str(stored.get("startDayOfTheWeek") or EXTENDED_DEFAULTS["startDayOfTheWeek"]).upper()


def _counters(request: Request) -> Counters | None:
    services = context_of(request).extras.get("services")
    return counters_of(services) if services is not None else None


async def all_usage(request: Request) -> Response:
    start, size = int_param(request, "from", 0), int_param(request, "size", 1000, minimum=1)
    names = {k: request.query_params.get(k) for k in ("name", "package", "plan")}
    out = []
    async with context_of(request).store.read() as tx:
        day = await _start_day(tx)
        for row in await tx.list("subscription"):
            owner = await tx.get("application", row.id)
            if owner is None or not await teams.is_visible(request, tx, owner):
                continue
            usage = await _usage(tx, _counters(request), Subscription.model_validate(row.body), day)
            filters = ((names["name"], "applicationName"), (names["package"], "packageName"),
                       (names["plan"], "planName"))
            if usage is None or any(v and usage[f] != v for v, f in filters):
                continue
            out.append(usage)
    return json_response(out[start:start + size])


async def app_usage(request: Request) -> Response:
    async with context_of(request).store.read() as tx:
        sub, _ = await _load_sub(request, tx, request.path_params["applicationId"])
        usage = await _usage(tx, _counters(request), sub, await _start_day(tx))
    if usage is None:
        raise not_found("usage (the plan has no quota) of application", sub.applicationId)
    return json_response(usage)


routes = [
    Route("/subscriptions", create_subscription, methods=["POST"]),
    Route("/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/subscriptions/usage", all_usage, methods=["GET"]),
    Route("/subscriptions/{applicationId}", get_subscription, methods=["GET"]),
    Route("/subscriptions/{applicationId}", switch_subscription, methods=["PUT"]),
    Route("/subscriptions/{applicationId}", delete_subscription, methods=["DELETE"]),
    Route("/subscriptions/{applicationId}/usage", app_usage, methods=["GET"]),
]
