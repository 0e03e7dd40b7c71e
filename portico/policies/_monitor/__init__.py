"""Shared by ``monitorServicePerformance`` and ``monitorSLA``: config, aggregates, alerting.

Calls are aggregated in memory per interval (per API, or per API and application for SLAs).
When a call completes after the interval ended, the closed interval's KPIs are checked against
``monitorRules``; each rule that holds is one breach, written as a ``Monitor`` event to the
``gateway_events`` table (and the server log for ``localLog``). ``alertFrequency: once`` alerts
for the first interval of a breach and again only after an interval without it; ``every``
alerts for every interval in breach. Aggregates live in the handler: a configuration change
starts a fresh interval."""

from __future__ import annotations

import logging
import time
from typing import Literal

from pydantic import Field

from portico.gateway.exchange import Exchange
from portico.policies._destinations import Destination, gateway_destination, local_log_level, warn_undelivered
from portico.policies._monitor.kpis import KPI_NAMES, Aggregate, MonitorRule
from portico.policies._monitor.writer import MonitorEventWriter, writer_for
from portico.policies.base import PolicyConfig

log = logging.getLogger("portico.monitor")
_UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0, "weeks": 604800.0,
          "months": 2592000.0}  # a month is 30 days

__all__ = ["KPI_NAMES", "Monitor", "MonitorConfig", "MonitorRule"]


class MonitorConfig(PolicyConfig):
    alertInterval: float = Field(gt=0, description="Length of the evaluation interval, in alertIntervalUnit.")
    alertIntervalUnit: Literal["seconds", "minutes", "hours", "days", "weeks", "months"] = Field(
        default="minutes", description="Unit of alertInterval.")
    alertFrequency: Literal["once", "every"] = Field(
        default="once", description="once: alert when a breach starts; every: every interval in breach.")
    alertMessage: str = Field(default="", description="Text carried by the monitor event.")
    destination: list[Destination] = Field(default_factory=gateway_destination, description="Alert destinations.")
    monitorRules: list[MonitorRule] = Field(min_length=1, description="KPI conditions; each one that holds alerts.")


class _Window:
    __slots__ = ("aggregate", "breached", "start")

    def __init__(self, start: float, rules: int) -> None:
        self.start = start
        self.aggregate = Aggregate()
        self.breached = [False] * rules  # per rule: breached in the previous interval


class Monitor:
    """Per-handler state: one window per key; ``observe`` is called from ``on_complete``."""

    def __init__(self, config: MonitorConfig, policy: str) -> None:
        self.config = config
        self.policy = policy
        self.interval = config.alertInterval * _UNITS[config.alertIntervalUnit]
        self.windows: dict[str, _Window] = {}
        self.to_gateway = any(d.destinationType == "GATEWAY" for d in config.destination)
        self.level = local_log_level(config.destination)
        warn_undelivered(config.destination, policy)

    def observe(self, ex: Exchange, status: int, key: str) -> None:
        now = time.time()
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = _Window(now, len(self.config.monitorRules))
        elif now >= window.start + self.interval:
            self._close(ex, window, key)
            elapsed = int((now - window.start) // self.interval)
            window.start += elapsed * self.interval
            window.aggregate = Aggregate()
        elapsed_ms = (time.perf_counter() - ex.started) * 1000
        window.aggregate.add(elapsed_ms, status, ex.fault.key if ex.fault else "")

    def _close(self, ex: Exchange, window: _Window, key: str) -> None:
        writer: MonitorEventWriter | None = writer_for(ex) if self.to_gateway else None
        for i, rule in enumerate(self.config.monitorRules):
            actual = window.aggregate.kpi(rule.monitorRuleName)
            breach = actual is not None and rule.holds(actual)
            alert = breach and (self.config.alertFrequency == "every" or not window.breached[i])
            window.breached[i] = breach
            if not alert:
                continue
            body = {
                "eventType": "Monitor", "policyName": self.policy, "apiId": ex.api.id, "apiName": ex.api.name,
                "apiVersion": ex.api.version, "applicationId": key or None, "ruleName": rule.monitorRuleName,
                "operator": rule.monitorRuleOperator, "expectedValue": rule.value, "actualValue": actual,
                "alertMessage": self.config.alertMessage, "intervalStart": int(window.start * 1000),
                "intervalEnd": int((window.start + self.interval) * 1000),
            }
            if self.level is not None:
                log.log(self.level, "%s breach on %s: %s %s %s (actual %s) %s", self.policy, ex.api.name,
                        rule.monitorRuleName, rule.monitorRuleOperator, rule.value, actual, self.config.alertMessage)
            if writer is not None:
                writer.emit(body)
