"""``monitorSLA`` (LMT): KPI rules per consuming application, per interval.

``consumerIds`` names the applications (ids or names) the agreement is with; empty means every
identified application. Calls without an identified application are not counted. See
:mod:`portico.policies._monitor` for the KPIs, the interval and the alerts."""

from __future__ import annotations

from pydantic import Field

from portico.gateway.exchange import Exchange
from portico.policies._monitor import Monitor, MonitorConfig
from portico.policies.base import PolicyHandler


class MonitorSLAConfig(MonitorConfig):
    consumerIds: list[str] = Field(default_factory=list, description="Applications (ids or names) monitored.")


class MonitorSLA(PolicyHandler):
    template_key = "monitorSLA"
    stage = "LMT"
    title = "Monitor Service Level Agreement"
    Config = MonitorSLAConfig

    def __init__(self, config: MonitorSLAConfig) -> None:
        super().__init__(config)
        self._consumers = frozenset(config.consumerIds)
        self._monitor = Monitor(config, self.template_key)

    def on_complete(self, ex: Exchange, status: int) -> None:
        app = ex.application
        if app is None or (self._consumers and app.id not in self._consumers and app.name not in self._consumers):
            return
        self._monitor.observe(ex, status, app.id)
