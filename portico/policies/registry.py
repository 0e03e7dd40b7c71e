"""Template key -> policy handler class, and the stages in execution order."""

from __future__ import annotations

from portico.policies.base import PolicyHandler
from portico.policies.entry_protocol_policy import EntryProtocolPolicy
from portico.policies.evaluate_policy import EvaluatePolicy
from portico.policies.straight_through_routing import StraightThroughRouting

# (stage key, display name, sequence) in the order the gateway runs them.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("transport", "Transport", "insequence"),
    ("IAM", "Identify & Access", "insequence"),
    ("requestPayloadProcessing", "Request Processing", "insequence"),
    ("routing", "Routing", "insequence"),
    ("LMT", "Traffic Monitoring", "insequence"),
    ("responseProcessing", "Response Processing", "outsequence"),
    ("responseFaultProcessing", "Error Handling", "faultsequence"),
)
STAGE_KEYS = tuple(s[0] for s in STAGES)

HANDLERS: dict[str, type[PolicyHandler]] = {
    h.template_key: h for h in (EntryProtocolPolicy, EvaluatePolicy, StraightThroughRouting)
}


def handler_for(template_key: str) -> type[PolicyHandler] | None:
    return HANDLERS.get(template_key)
