"""Template key -> policy handler class, and the stages in execution order.

Every module in this package that defines a ``PolicyHandler`` subclass with a
``template_key`` is registered: adding a policy is adding its module."""

from __future__ import annotations

import importlib
import pkgutil

import portico.policies as package
from portico.policies.base import PolicyHandler

# (stage key, display name, sequence) in the order the gateway runs them.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("threatProtection", "Threat Protection", "insequence"),
    ("transport", "Transport", "insequence"),
    ("IAM", "Identify & Access", "insequence"),
    ("requestPayloadProcessing", "Request Processing", "insequence"),
    ("routing", "Routing", "insequence"),
    ("LMT", "Traffic Monitoring", "insequence"),
    ("responseProcessing", "Response Processing", "outsequence"),
    ("responseFaultProcessing", "Error Handling", "faultsequence"),
)
STAGE_KEYS = tuple(s[0] for s in STAGES)
_NOT_POLICIES = {"base", "params", "registry"}


def _discover() -> dict[str, type[PolicyHandler]]:
    found: dict[str, type[PolicyHandler]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name in _NOT_POLICIES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, PolicyHandler)
                and value is not PolicyHandler
                and value.__module__ == module.__name__
                and "template_key" in vars(value)
            ):
                if value.template_key in found:
                    raise RuntimeError(f"policy template {value.template_key!r} is defined twice")
                if value.stage not in STAGE_KEYS:
                    raise RuntimeError(f"policy {value.template_key!r} names unknown stage {value.stage!r}")
                found[value.template_key] = value
    return found


HANDLERS: dict[str, type[PolicyHandler]] = _discover()


def handler_for(template_key: str) -> type[PolicyHandler] | None:
    return HANDLERS.get(template_key)
