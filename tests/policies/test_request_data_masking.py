"""requestDataMasking: what the native service receives, logged payloads (mask_for_log),
log-only masking, the failure path and config validation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.gateway.test_runtime import add_action
from tests.policies.payload_support import Probe, bad_action, echo_spec, probe_registered, wire
from tests.support.node import Node
from tests.support.upstream import Upstream

STAGE = "requestPayloadProcessing"


def masking(jpath: list[tuple[str, str]] = (), xpath: list[tuple[str, str]] = (),  # type: ignore[assignment]
            regex: list[tuple[str, str]] = (), **flags: str) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Criteria as (action, maskingType); mask criteria use the value '***'."""
    params: dict[str, Any] = {}
    for key, criteria in (("xpathMasking", xpath), ("jpathMasking", jpath), ("regexMasking", regex)):
        if criteria:
            params[key] = {"maskingCriteria": [
                {"action": a, "maskingType": t, **({"maskValue": "***"} if t == "mask" else {})} for a, t in criteria]}
    params.update(flags)
    return wire(params)


async def logged(count: int = 1) -> list[dict[str, bytes]]:
    for _ in range(100):  # on_complete runs right after the answer went out
        if len(Probe.logged) >= count:
            break
        await asyncio.sleep(0.01)
    return Probe.logged


async def test_json_xml_and_regex_masking_of_the_forwarded_payload(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    with probe_registered():
        await add_action(node, api, "requestDataMasking", STAGE, masking(
            jpath=[("${request.payload.accountNumber}", "mask"), ("$.card.cvv", "remove")],
            xpath=[("//accountNumber", "mask"), ("//cvv", "remove")],
            regex=[(r"\d{4}-\d{4}", "mask")],
            sameForTransactionalLogging="true", applyForPayload="true"))
        await add_action(node, api, "testPayloadProbe", "LMT", [])
        body = {"accountNumber": "12345", "card": {"cvv": "999", "holder": "Ann"}, "note": "call 1234-5678"}
        r = await node.gw.post("/Echo/1.0/echo", json=body)
        assert r.status_code == 200, r.text
        assert json.loads(r.json()["body"]) == {"accountNumber": "***", "card": {"holder": "Ann"},
                                                "note": "call ***"}
        xml = b"<request><payload><accountNumber>12345</accountNumber><cvv>1</cvv></payload></request>"
        r = await node.gw.post("/Echo/1.0/reflect", content=xml, headers={"Content-Type": "application/xml"})
        assert r.text == "<request><payload><accountNumber>***</accountNumber></payload></request>"
        entries = await logged(2)
        assert b"12345" not in entries[0]["request"] and b"***" in entries[0]["request"]
        # Failure path: declared JSON that is not JSON is refused, never forwarded unmasked.
        bad = await node.gw.post("/Echo/1.0/echo", content=b'{"accountNumber": 12345',
                                 headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and "could not be masked" in bad.json()["Exception"]


async def test_log_only_masking_keeps_the_payload(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    with probe_registered():
        await add_action(node, api, "requestDataMasking", STAGE, masking(
            jpath=[("$.secret", "mask")], sameForTransactionalLogging="true", applyForPayload="false"))
        await add_action(node, api, "testPayloadProbe", "LMT", [])
        r = await node.gw.post("/Echo/1.0/echo", json={"secret": "s3", "x": 1})
        assert json.loads(r.json()["body"]) == {"secret": "s3", "x": 1}
        entry = (await logged())[0]
        assert json.loads(entry["request"]) == {"secret": "***", "x": 1}
        # A logged payload that cannot be masked is withheld, not logged in clear.
        await node.gw.post("/Echo/1.0/echo", content=b'{"secret": "s3"', headers={"Content-Type": "application/json"})
        assert (await logged(2))[1]["request"].startswith(b"[payload withheld")


async def test_config_validation_names_the_field(sqlite_node: Node) -> None:
    node = sqlite_node
    cases = [
        (masking(jpath=[("$..[", "mask")]), "jpathMasking", "invalid JSONPath"),
        (masking(jpath=[("${request.headers.x}", "mask")]), "jpathMasking", "does not address a JSON payload"),
        (masking(xpath=[("//a[", "mask")]), "xpathMasking", "invalid XPath"),
        (masking(regex=[("(unclosed", "mask")]), "regexMasking", "invalid regular expression"),
        (masking(regex=[("a", "hide")]), "regexMasking.maskingCriteria.maskingType", "'mask' or 'remove'"),
        (masking(regex=[("a", "mask")], applyForPayload="maybe"), "applyForPayload", "boolean"),
        (masking(sameForTransactionalLogging="true"), "parameters", "at least one masking criterion"),
    ]
    for params, field, reason in cases:
        details = await bad_action(node, "requestDataMasking", params)
        assert details.startswith(f"requestDataMasking: parameter '{field}"), details
        assert reason in details, details
