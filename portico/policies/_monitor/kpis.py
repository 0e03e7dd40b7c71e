"""KPIs of one interval and the rules over them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from portico.policies.base import PolicyConfig

KPI_NAMES = ("availability", "averageResponseTime", "maximumResponseTime", "minimumResponseTime", "successCount",
             "faultCount", "totalRequestCount", "requestCount")
# Calls that failed because the native service was not there count against availability.
_DOWNTIME = frozenset({"NATIVE_UNAVAILABLE", "NATIVE_TIMEOUT", "ALL_ENDPOINTS_DOWN"})


class MonitorRule(PolicyConfig):
    monitorRuleName: Literal["availability", "averageResponseTime", "maximumResponseTime", "minimumResponseTime",
                             "successCount", "faultCount", "totalRequestCount", "requestCount"] = Field(
        description="The KPI: availability (% of calls the native service was up for), response times in ms, "
                    "or counts (requestCount, as plan quotas use it, is totalRequestCount).")
    monitorRuleOperator: Literal["EQ", "NE", "GT", "LT", "GE", "LE"] = Field(description="Comparison.")
    value: float = Field(description="Threshold the KPI is compared with.")

    def holds(self, actual: float) -> bool:
        v, op = self.value, self.monitorRuleOperator
        return {"EQ": actual == v, "NE": actual != v, "GT": actual > v, "LT": actual < v, "GE": actual >= v,
                "LE": actual <= v}[op]


class Aggregate:
    __slots__ = ("down", "faults", "max_ms", "min_ms", "successes", "sum_ms", "total")

    def __init__(self) -> None:
        self.total = self.successes = self.faults = self.down = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0
        self.min_ms = float("inf")

    def add(self, elapsed_ms: float, status: int, failure_key: str) -> None:
        self.total += 1
        self.sum_ms += elapsed_ms
        self.max_ms = max(self.max_ms, elapsed_ms)
        self.min_ms = min(self.min_ms, elapsed_ms)
        if status < 400 and not failure_key:
            self.successes += 1
        else:
            self.faults += 1
            if failure_key in _DOWNTIME:
                self.down += 1

    def kpi(self, name: str) -> float | None:
        """The KPI's value; None when it has no value (response times of an empty interval)."""
        if name in ("totalRequestCount", "requestCount"):
            return float(self.total)
        if name == "successCount":
            return float(self.successes)
        if name == "faultCount":
            return float(self.faults)
        if name == "availability":
            return 100.0 if self.total == 0 else round(100.0 * (self.total - self.down) / self.total, 2)
        if self.total == 0:
            return None
        if name == "averageResponseTime":
            return round(self.sum_ms / self.total, 2)
        return round(self.max_ms if name == "maximumResponseTime" else self.min_ms, 2)
