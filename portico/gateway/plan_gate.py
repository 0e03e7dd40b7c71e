"""Enforces subscription plans on the APIs of active packages (added to those APIs' LMT stage by
the packages snapshot part; other APIs never run it).

The calling application must hold a subscription whose package contains the API (or be
registered to the API directly, which bypasses plans). The plan's rate limit and quota are
counted per application across every API of the package; ``ex.package_id``/``ex.plan_id`` are
set for events. Success and failure counts feed the usage API; they are tallied in the quota
window the call was admitted in, so a call in flight across a window boundary counts in one window
(``usedQuota`` and ``successCount`` agree)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from portico.counters import CounterUnavailable, Window, counters_of, window_for
from portico.domain.plan_limits import PlanLimits
from portico.events.violations import violations_of
from portico.policies._limits import Limit, Verdict, check_limit, first_breach, limit_settings, settle
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

# Per-request state of a call under a quota: "window" (the quota window the call was admitted in), "key".
_STATE = "planEnforcement"
NOT_SUBSCRIBED = Violation(403, "APPLICATION_NOT_SUBSCRIBED", "The application has no subscription for this API.")


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    application_id: str
    package_id: str
    plan_id: str
    api_ids: frozenset[str]
    limits: PlanLimits
    quota_key: str
    rate_key: str


class PlanGate(PolicyHandler):
    """Not a template (no registry entry): built by the packages snapshot part."""

    stage = "LMT"
    title = "Package plan enforcement"
    Config: ClassVar[type[PolicyConfig]] = PolicyConfig
    _tasks: ClassVar[set[asyncio.Task[None]]] = set()

    def __init__(self, subscriptions: dict[str, ActiveSubscription]) -> None:
        super().__init__(PolicyConfig())
        self.template_key = "planEnforcement"  # type: ignore[misc]
        self._subs = subscriptions

    def run(self, ex: Exchange) -> Verdict:
        app = ex.application
        if app is None:
            return None  # IAM let an anonymous call through
        sub = self._subs.get(app.id)
        if sub is None or ex.api.id not in sub.api_ids:
            return None if ex.api.id in app.api_ids else NOT_SUBSCRIBED
        ex.package_id, ex.plan_id = sub.package_id, sub.plan_id
        limits = sub.limits
        now = int(time.time() * 1000)
        if limits.quota is not None:
            quota = limits.quota
            window = window_for(now, quota.interval, quota.unit, limit_settings(ex.snapshot).start_day)
            ex.policy_state(_STATE).update(window=window, key=sub.quota_key)
        if limits.rate is not None:
            verdict = check_limit(ex, sub.rate_key, limits.rate)
            if verdict is not None:  # a breach, or counters elsewhere: the rest waits for the answer
                return self._after_rate(ex, sub, verdict, now)
        if limits.quota is not None:
            return self._count_quota(ex, sub, limits.quota, now)
        return None  # within the rate limit, no quota: answered without a coroutine

    async def _after_rate(self, ex: Exchange, sub: ActiveSubscription, verdict: Verdict, now: int) -> Violation | None:
        violation = await settle(verdict)
        limits = sub.limits
        if violation is not None:
            assert limits.rate is not None
            await self._alert(ex, sub, sub.rate_key, limits.rate, violation)
            return violation
        if limits.quota is not None:
            return await self._count_quota(ex, sub, limits.quota, now)
        return None

    async def _count_quota(self, ex: Exchange, sub: ActiveSubscription, quota: Limit, now: int) -> Violation | None:
        if sub.limits.quota_blocks:
            violation = await settle(check_limit(ex, sub.quota_key, quota, now))
            if violation is not None:
                await self._alert(ex, sub, sub.quota_key, quota, violation)
            return violation
        # monitorSLA quota: count everything, notify once when notifyPercent of the quota is used.
        window: Window = ex.policy_state(_STATE)["window"]
        try:
            used = await counters_of(ex.snapshot.services).add(sub.quota_key, window)
        except CounterUnavailable:
            return None
        threshold = quota.count * (sub.limits.notify_percent or 100) / 100
        if used >= threshold and used - 1 < threshold:
            violations_of(ex.snapshot.services).record("MonitorEvent", ex.api.id, sub.application_id, {
                "eventSource": "MonitorPolicy", "packageId": sub.package_id, "planId": sub.plan_id,
                "alertMessage": f"{used} of {quota.count} quota used", "usedQuota": used, "quota": quota.count,
            })
        return None

    @staticmethod
    async def _alert(ex: Exchange, sub: ActiveSubscription, key: str, limit: Limit, violation: Violation) -> None:
        if violation.status != 429 or not await first_breach(ex, key, limit):
            return
        violations_of(ex.snapshot.services).record("PolicyViolation", ex.api.id, sub.application_id, {
            "eventSource": "Enforce-HardLimit", "packageId": sub.package_id, "planId": sub.plan_id,
            "apiName": ex.api.name, "alertMessage": violation.message, "limit": limit.count,
            "interval": limit.interval, "intervalUnit": limit.unit,
        })

    def on_complete(self, ex: Exchange, status: int) -> None:
        state = ex.state.get(_STATE) if ex.state else None
        if not state:
            return  # not a subscriber's call, or a plan without quota
        suffix = ":ok" if status < 400 else ":fail"
        task = asyncio.get_running_loop().create_task(self._tally(ex, state["key"] + suffix, state["window"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _tally(ex: Exchange, key: str, window: Window) -> None:
        try:
            await counters_of(ex.snapshot.services).add(key, window)
        except CounterUnavailable:
            pass
