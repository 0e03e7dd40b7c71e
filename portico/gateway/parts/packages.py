"""Snapshot part: rate-limit settings, quota survival, and plan enforcement on the APIs of
active packages.

For every API of an active package: the IAM stage identifies applications by API key (an
existing ``evaluatePolicy`` gains an OR-ed global apiKey rule; an API without one gets it), as
package activation does in the reference, and a :class:`PlanGate` runs first in LMT."""

from __future__ import annotations

from dataclasses import replace

from portico.counters import counters_of
from portico.counters.survival import QuotaSurvival
from portico.domain.package import Package, Plan, Subscription
from portico.domain.plan_limits import QUOTA_PREFIX, plan_limits, quota_key, rate_key
from portico.domain.policy import Policy, PolicyAction
from portico.gateway.plan_gate import ActiveSubscription, PlanGate
from portico.gateway.snapshot import CompiledApi, PhasePlan, Services, Snapshot, snapshot_part, with_request
from portico.policies._limits import LIMIT_SETTINGS, LimitSettings
from portico.policies.base import PolicyHandler
from portico.policies.evaluate_policy import EvaluatePolicy, EvaluatePolicyConfig, IdentificationRuleConfig
from portico.policies.registry import STAGE_KEYS
from portico.settings import EXTENDED_DEFAULTS
from portico.store import StoreTransaction

API_KEY_RULE = IdentificationRuleConfig(identificationType="apiKey", applicationLookup="global")


async def _settings(tx: StoreTransaction) -> dict[str, str]:
    row = await tx.get("settings", "settings")
    stored = row.body.get("extendedKeys", {}) if row else {}
    return {**EXTENDED_DEFAULTS, **stored}


async def _start_survival(services: Services, interval: float) -> None:
    """Restore the saved quota counts and start saving them, once per process. Registered only
    after the restore: a store error there fails this build, and the next build (the reloader keeps
    the last snapshot and tries again) must restore and start it rather than find it done. Builds
    run one at a time (at start, then under the reloader's lock), so none starts a second one."""
    store = services.options.get("store")
    if store is None or services.options.get("quota_survival") is not None:
        return
    survival = QuotaSurvival(store, counters_of(services), QUOTA_PREFIX, interval)
    await survival.restore()  # an unreachable counter store is not an error: the saver retries it
    survival.start()
    services.options["quota_survival"] = survival
    services.closers.append(survival.close)


_ORDER = {k: i for i, k in enumerate(STAGE_KEYS)}


def _with_api_key(handler: EvaluatePolicy) -> EvaluatePolicy:
    cfg = handler.config
    assert isinstance(cfg, EvaluatePolicyConfig)
    # The package's key rule joins the API's own rules under the API's own connector: an AND
    # policy (key and IP range, say) stays AND, so activation never weakens identification.
    rules = [r for r in cfg.IdentificationRule if r.identificationType != "apiKey"] + [API_KEY_RULE]
    patched = EvaluatePolicy(cfg.model_copy(update={"IdentificationRule": rules}))
    patched.placed_stage = handler.placed_stage
    return patched


def _first_after(handlers: list[PolicyHandler], stage: str, inclusive: bool) -> int:
    limit = _ORDER[stage]
    for i, h in enumerate(handlers):
        rank = _ORDER.get(h.placed_stage, len(_ORDER))
        if rank > limit or (inclusive and rank == limit):
            return i
    return len(handlers)


def _enforced(plan: PhasePlan, gate: PlanGate) -> PhasePlan:
    """A copy of ``plan`` (plans may be shared between APIs) with API-key identification in
    IAM and the gate first in LMT."""
    request = [_with_api_key(h) if isinstance(h, EvaluatePolicy) else h for h in plan.request]
    if not any(isinstance(h, EvaluatePolicy) for h in request):
        default = EvaluatePolicy(EvaluatePolicyConfig(IdentificationRule=[API_KEY_RULE]))
        default.placed_stage = "IAM"
        request.insert(_first_after(request, "IAM", inclusive=False), default)
    request.insert(_first_after(request, "LMT", inclusive=True), gate)
    return replace(with_request(plan, request), complete=(gate, *plan.complete))


def _enforce(api: CompiledApi, gate: PlanGate) -> None:
    api.plan = _enforced(api.plan, gate)
    api.scoped_plans = {k: _enforced(v, gate) for k, v in api.scoped_plans.items()}


@snapshot_part
async def build(tx: StoreTransaction, snap: Snapshot) -> None:
    ext = await _settings(tx)
    snap.extras[LIMIT_SETTINGS] = LimitSettings(
        fail_open=ext["rateLimitFailOpen"].strip().lower() != "false", start_day=ext["startDayOfTheWeek"].upper()
    )
    try:
        interval = max(float(ext["pgmen.quotaSurvival.interval"]), 0.1)
    except ValueError:
        interval = 60.0
    await _start_survival(snap.services, interval)
    packages = [Package.model_validate(r.body) for r in await tx.list("package")]
    active = [p for p in packages if p.active]
    if not active:
        return
    plans = {r.id: Plan.model_validate(r.body) for r in await tx.list("plan")}
    policies = {r.id: Policy.model_validate(r.body) for r in await tx.list("policy")}
    actions = {r.id: PolicyAction.model_validate(r.body) for r in await tx.list("policyAction")}
    by_id = {p.id: p for p in active}
    subs: dict[str, ActiveSubscription] = {}
    for row in await tx.list("subscription"):
        sub = Subscription.model_validate(row.body)
        package, plan = by_id.get(sub.packageId), plans.get(sub.planId)
        if package is None or plan is None:
            continue
        subs[sub.applicationId] = ActiveSubscription(
            sub.applicationId, package.id, plan.id, frozenset(package.apiIds),
            plan_limits(plan, policies, actions), quota_key(sub), rate_key(sub),
        )
    gate = PlanGate(subs)
    for api_id in {a for p in active for a in p.apiIds}:
        api = snap.apis_by_id.get(api_id)
        if api is not None:
            _enforce(api, gate)
    snap.extras["subscriptions"] = subs
