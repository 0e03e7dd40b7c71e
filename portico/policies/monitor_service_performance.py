"""``monitorServicePerformance`` (LMT): KPI rules over every call of the API, per interval.

See :mod:`portico.policies._monitor` for the KPIs, the interval and the alerts."""

from __future__ import annotations

from portico.gateway.exchange import Exchange
from portico.policies._monitor import Monitor, MonitorConfig
from portico.policies.base import PolicyHandler


class MonitorServicePerformanceConfig(MonitorConfig):
    """The reference's parameters: interval, frequency, message, destinations and monitorRules."""


class MonitorServicePerformance(PolicyHandler):
    template_key = "monitorServicePerformance"
    stage = "LMT"
    title = "Monitor Service Performance"
    Config = MonitorServicePerformanceConfig

    def __init__(self, config: MonitorServicePerformanceConfig) -> None:
        super().__init__(config)
        self._monitor = Monitor(config, self.template_key)

    def on_complete(self, ex: Exchange, status: int) -> None:
        self._monitor.observe(ex, status, "")
