"""faultDataMasking: the native fault body seen by later fault policies (here a probe that sends it
as the answer) and logged fault payloads are masked; a body that cannot be masked is dropped."""

from __future__ import annotations

from tests.gateway.test_runtime import add_action
from tests.policies.payload_support import bad_action, echo_spec, probe_registered
from tests.policies.test_request_data_masking import logged, masking
from tests.support.node import Node
from tests.support.upstream import Upstream

STAGE = "responseFaultProcessing"


async def test_native_fault_body_is_masked(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    with probe_registered():
        # Enforcement order: masking first, then the probe that answers with the native fault body.
        await add_action(node, api, "faultDataMasking", STAGE, masking(jpath=[("$.status", "mask")]))
        await add_action(node, api, "testPayloadProbe", STAGE, [])
        await add_action(node, api, "testPayloadProbe", "LMT", [])
        r = await node.gw.get("/Echo/1.0/status/503")
        assert r.status_code == 503
        assert r.json() == {"status": "***"}
        assert (await logged())[0]["fault"] == b'{"status":"***"}'


async def test_log_only_fault_masking_and_config_validation(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(echo_spec(upstream.url))
    with probe_registered():
        await add_action(node, api, "faultDataMasking", STAGE,
                         masking(regex=[(r"\d+", "mask")], applyForPayload="false"))
        await add_action(node, api, "testPayloadProbe", STAGE, [])
        await add_action(node, api, "testPayloadProbe", "LMT", [])
        r = await node.gw.get("/Echo/1.0/status/500")
        assert r.json() == {"status": 500}  # the payload itself is left alone
        assert (await logged())[0]["fault"] == b'{"status": ***}'
    details = await bad_action(node, "faultDataMasking", masking(jpath=[("status", "mask")]))
    assert details.startswith("faultDataMasking: parameter 'jpathMasking'") and "must start with '$'" in details
