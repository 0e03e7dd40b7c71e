"""responseDataMasking: the gateway's answer masked, logged response payloads, the failure path."""

from __future__ import annotations

import json

from tests.gateway.test_runtime import add_action
from tests.policies.payload_support import bad_action, echo_spec, probe_registered
from tests.policies.test_request_data_masking import logged, masking
from tests.support.node import Node
from tests.support.upstream import Upstream

STAGE = "responseProcessing"


async def test_answer_is_masked_and_logged_masked(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    with probe_registered():
        await add_action(node, api, "responseDataMasking", STAGE, masking(
            jpath=[("${response.payload.jsonPath[$.card.number]}", "mask"), ("$.card.cvv", "remove")],
            xpath=[("//card/@number", "mask")], regex=[("secret-[a-z]+", "remove")]))
        await add_action(node, api, "testPayloadProbe", "LMT", [])
        body = {"card": {"number": "4111", "cvv": "123"}, "note": "secret-abc here"}
        r = await node.gw.post("/Echo/1.0/reflect", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"card": {"number": "***"}, "note": " here"}
        assert json.loads((await logged())[0]["response"]) == {"card": {"number": "***"}, "note": " here"}
        xml = b'<?xml version="1.0"?><card number="4111"><holder>Ann</holder></card>'
        r = await node.gw.post("/Echo/1.0/reflect", content=xml, headers={"Content-Type": "application/xml"})
        assert r.text.endswith('<card number="***"><holder>Ann</holder></card>') and r.text.startswith("<?xml")
        # Failure path: a native body declared XML that is not XML is never returned unmasked.
        bad = await node.gw.post("/Echo/1.0/reflect", content=b"<card number='4111'>",
                                 headers={"Content-Type": "application/xml"})
        assert bad.status_code == 502 and "4111" not in bad.text
        assert "could not be masked" in bad.json()["Exception"]


async def test_config_validation(sqlite_node: Node) -> None:
    details = await bad_action(sqlite_node, "responseDataMasking", masking(xpath=[("//*[", "mask")]))
    assert details.startswith("responseDataMasking: parameter 'xpathMasking'") and "invalid XPath" in details
