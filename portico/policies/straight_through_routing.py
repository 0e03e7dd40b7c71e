"""``straightThroughRouting`` (routing stage): send the request to one endpoint.

The endpoint URI may contain variables and aliases (``${MyAlias}/${sys:resource_path}``); see
:mod:`portico.policies._endpoint` for resolution and the timeout precedence. A URI with no
variable but ``${sys:resource_path}`` is split once, at configuration time."""

from __future__ import annotations

from collections.abc import Iterable

from portico.gateway.endpoint import TlsChoice
from portico.gateway.exchange import Exchange
from portico.policies._endpoint import RouteTo, RoutingHandler, endpoint_choices, endpoint_of
from portico.policies.base import Step, Violation


class StraightThroughRoutingConfig(RouteTo):
    """The routing fields sit at the top level of the action's parameters."""


class StraightThroughRouting(RoutingHandler):
    template_key = "straightThroughRouting"
    title = "Straight Through Routing"
    Config = StraightThroughRoutingConfig

    def __init__(self, config: StraightThroughRoutingConfig) -> None:
        super().__init__(config)
        self._endpoint = endpoint_of(config)

    def tls_choices(self) -> Iterable[TlsChoice]:
        return endpoint_choices([self._endpoint])

    def run(self, ex: Exchange) -> Violation | None:
        return self._endpoint.step(ex)

    def request_step(self) -> Step:
        return self._endpoint.step
