"""Helpers for the payload policies' tests: wire parameters from plain Python, the echo spec with
``/reflect``, and a probe policy that exposes what fault masking and log masking produce."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from portico.gateway.exchange import Exchange, Fault
from portico.policies import registry
from portico.policies.base import PolicyConfig, PolicyHandler
from portico.policies.payload.masking import mask_for_log
from tests.support.node import Node
from tests.support.upstream import spec_for


def wire(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """``{"a": "x", "g": {"b": ["1", "2"]}, "r": [{...}, {...}]}`` as reference parameters."""
    out: list[dict[str, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.append({"templateKey": key, "parameters": wire(value)})
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.extend({"templateKey": key, "parameters": wire(v)} for v in value)
        else:
            out.append({"templateKey": key, "values": value if isinstance(value, list) else [value]})
    return out


def echo_spec(url: str) -> dict[str, Any]:
    spec = spec_for(url)
    ok = {"200": {"description": "ok"}}
    spec["paths"]["/reflect"] = {"post": {"responses": ok}, "put": {"responses": ok}}
    spec["paths"]["/echo/{id}"]["post"] = {"parameters": spec["paths"]["/echo/{id}"]["get"]["parameters"],
                                           "responses": ok}
    return spec


async def bad_action(node: Node, template: str, parameters: list[dict[str, Any]]) -> str:
    """Create an action that must be refused; returns the errorDetails."""
    r = await node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": template, "locale": "en"}], "templateKey": template, "parameters": parameters}})
    assert r.status_code == 400, r.text
    details: str = r.json()["errorDetails"]
    return details


class ProbeConfig(PolicyConfig):
    pass


class Probe(PolicyHandler):
    """Test-only fault/LMT policy: sends the (masked) native fault body as the fault answer and
    records what mask_for_log makes of each payload."""

    template_key = "testPayloadProbe"
    stage = "responseFaultProcessing"
    extra_stages = ("LMT",)
    title = "probe"
    Config = ProbeConfig
    logged: ClassVar[list[dict[str, bytes]]] = []
    needs_request_body = True  # in LMT: what a logging policy would see

    def run(self, ex: Exchange) -> None:
        return None

    def on_fault(self, ex: Exchange, fault: Fault) -> None:
        if fault.native is not None and self.placed_stage == "responseFaultProcessing":
            fault.body = fault.native.body
            fault.headers = [(b"content-type", fault.native.header(b"content-type") or b"text/plain")]
        return None

    def on_complete(self, ex: Exchange, status: int) -> None:
        if self.placed_stage != "LMT":
            return
        entry: dict[str, bytes] = {}
        if ex.body is not None:
            entry["request"] = mask_for_log(ex, ex.body, "request")
        if ex.response is not None:
            entry["response"] = mask_for_log(ex, ex.response.body, "response")
        if ex.fault is not None and ex.fault.native is not None:
            entry["fault"] = mask_for_log(ex, ex.fault.native.body, "fault")
        Probe.logged.append(entry)


@contextmanager
def probe_registered() -> Iterator[type[Probe]]:
    registry.HANDLERS[Probe.template_key] = Probe
    Probe.logged.clear()
    try:
        yield Probe
    finally:
        registry.HANDLERS.pop(Probe.template_key, None)
