"""``throttle`` ("Traffic Optimization", LMT stage): request-count limits per fixed interval.

A call is counted against the rule's limit in the current window (aligned to interval
boundaries; weeks start on ``startDayOfTheWeek``). ``monitorRuleOperator`` GT with value N
lets N calls through per window (the N+1st breaches); GE/GTE lets N-1 through. Breaches answer
429 with ``Retry-After`` (seconds to the window's end) and record a ``PolicyViolation``
gateway event carrying ``alertMessage`` (``alertFrequency`` once: the first breach of each
window; every: each breach).

``consumerIds``: ``AnyConsumers`` (every call) or application ids/names (only their calls are
limited). Counters are shared by all consumers of the API unless ``consumerSpecificCounter``
is true (a Portico extension: one counter per application; unidentified calls share one).
When the counter store is unreachable the extended setting ``rateLimitFailOpen`` decides:
true lets calls through, false answers 503."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from portico.events.violations import violations_of
from portico.policies._limits import Limit, Verdict, check_limit, first_breach, settle
from portico.policies.base import PolicyConfig, PolicyHandler, Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

IntervalUnit = Literal["seconds", "minutes", "hours", "days", "weeks", "months"]
ANY_CONSUMER = "AnyConsumers"

log = logging.getLogger("portico.policies.throttle")


class ThrottleRuleConfig(PolicyConfig):
    throttleRuleName: Literal["requestCount"] = Field(
        default="requestCount", description="What is limited: the number of requests."
    )
    monitorRuleOperator: Literal["GT", "GE", "GTE"] = Field(
        default="GT", description="GT: breach when the count exceeds value; GE (or GTE): when it reaches value."
    )
    value: int = Field(ge=1, description="The request count the operator compares against.")


class DestinationConfig(PolicyConfig):
    destinationType: Literal["GATEWAY", "localLog", "SMTP", "CUSTOM", "DES", "ELASTICSEARCH", "APIPORTAL",
                             "CENTRASITE", "SNMP", "AUDITLOG", "DIGITALEVENTS"] = Field(
        description="Where alerts go: GATEWAY (gateway events) and localLog (the server log) are delivered.")
    emailTo: list[str] = Field(default_factory=list, description="Recipients for SMTP alerts.")
    ids: list[str] = Field(default_factory=list, description="Custom destination ids.")


class ThrottleConfig(PolicyConfig):
    throttleRule: ThrottleRuleConfig = Field(description="The request-count limit.")
    alertInterval: int = Field(ge=1, description="Length of the counting interval, in alertIntervalUnit.")
    alertIntervalUnit: IntervalUnit = Field(default="minutes", description="Unit of alertInterval.")
    alertFrequency: Literal["once", "every"] = Field(
        default="once", description="Alert on the first breach per interval (once) or on every breach."
    )
    alertMessage: str = Field(default="", description="Text of the alert recorded on a breach.")
    consumerIds: list[str] = Field(
        default_factory=lambda: [ANY_CONSUMER],
        description="AnyConsumers, or the application ids (or names) whose calls are limited.",
    )
    consumerSpecificCounter: bool = Field(
        default=False, description="Portico extension: count each application separately (default: shared)."
    )
    destination: list[DestinationConfig] = Field(default_factory=list, description="Alert destinations.")


class Throttle(PolicyHandler):
    template_key = "throttle"
    stage = "LMT"
    title = "Traffic Optimization"
    Config = ThrottleConfig

    def __init__(self, config: ThrottleConfig) -> None:
        super().__init__(config)
        rule = config.throttleRule
        count = rule.value if rule.monitorRuleOperator == "GT" else rule.value - 1
        self._limit = Limit("rate limit", max(count, 0), config.alertInterval, config.alertIntervalUnit)
        self._consumers = None if ANY_CONSUMER in config.consumerIds else frozenset(config.consumerIds)
        self._per_consumer = config.consumerSpecificCounter
        self._every = config.alertFrequency == "every"
        self._local_log = any(d.destinationType == "localLog" for d in config.destination)
        self._message = config.alertMessage
        # Counters follow the rule (its stored action, ``action_id``, and its limit), not the handler
        # object: a reload with the same rule keeps counting. Rules for different consumers, or on
        # different resources, count apart (each rule's limit is its own).
        self._rule_key = f"{self._limit.count}/{config.alertInterval}{config.alertIntervalUnit}"

    def run(self, ex: Exchange) -> Verdict:
        app = ex.application
        if self._consumers is not None and (app is None or (app.id not in self._consumers
                                                            and app.name not in self._consumers)):
            return None
        if self._limit.count == 0:
            return Violation(429, "RATE_LIMIT_EXCEEDED", "The rate limit allows no requests.")
        consumer = (app.id if app else "-") if self._per_consumer else "*"
        key = f"thr:{ex.api.id}:{self.action_id}:{self._rule_key}:{consumer}"
        counted = ex.policy_state("throttle")
        if key in counted:  # an identical rule already counted this call
            return None
        counted[key] = True
        verdict = check_limit(ex, key, self._limit)
        if verdict is None:
            return None  # the common case, answered without a coroutine
        return self._refuse(ex, key, verdict)

    async def _refuse(self, ex: Exchange, key: str, verdict: Verdict) -> Violation | None:
        """A breach (or a verdict still to come): alert as configured, then answer."""
        violation = await settle(verdict)
        if violation is None or violation.status != 429:
            return violation
        app = ex.application
        if self._every or await first_breach(ex, key, self._limit):
            if self._local_log:
                log.warning("throttle: %s %s, application %s: %s", ex.api.name, ex.api.version,
                            app.name if app else "-", self._message or violation.message)
            violations_of(ex.snapshot.services).record("PolicyViolation", ex.api.id, app.id if app else None, {
                "apiName": ex.api.name, "apiVersion": ex.api.version, "policyName": self.title,
                "applicationName": app.name if app else None, "alertMessage": self._message or violation.message,
                "limit": self._limit.count, "interval": self._limit.interval, "intervalUnit": self._limit.unit,
            })
        return violation
