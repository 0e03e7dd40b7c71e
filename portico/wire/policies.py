"""Policy and policy action shapes: ``{"policy": ...}`` and ``{"policyAction": ...}``,
lists keeping the singular key as the reference does."""

from __future__ import annotations

from typing import Any

from portico.domain.policy import Policy, PolicyAction


def policy_body(policy: Policy) -> dict[str, Any]:
    return policy.model_dump(mode="json", by_alias=True)


def action_body(action: PolicyAction) -> dict[str, Any]:
    return action.model_dump(mode="json")
