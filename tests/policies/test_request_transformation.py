"""requestTransformation through the gateway with the real upstream: headers, query, path,
method, JSONPath/XPath/XSLT payload edits, XML<->JSON conversion, conditions, failures, config 400s."""

from __future__ import annotations

import json
from typing import Any

from tests.gateway.test_runtime import add_action
from tests.policies.payload_support import bad_action, echo_spec, wire
from tests.support.node import Node
from tests.support.upstream import Upstream

STAGE = "requestPayloadProcessing"
XSLT = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/order"><purchase id="{@id}"><xsl:value-of select="item"/></purchase></xsl:template>
</xsl:stylesheet>"""


def transformation(config: dict[str, Any], conditions: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    if conditions is not None:
        params["transformationConditions"] = conditions
    params["requestTransformationConfiguration"] = config
    return wire(params)


def edits(*pairs: tuple[str, str], remove: list[str] | None = None) -> dict[str, Any]:
    common: dict[str, Any] = {}
    if remove:
        common["remove"] = remove
    if pairs:
        common["addOrModify"] = [{"transformationVariable": k, "transformationValue": v} for k, v in pairs]
    return {"commonTransformation": common}


async def test_headers_query_path_and_method(node: Node, upstream: Upstream) -> None:
    """The Postman example's shape: remove a header, add one with a variable, plus query/path/method."""
    api = await node.create_api(echo_spec(upstream.url))
    config = edits(
        ("${request.headers.APIKey}", "key-${request.headers.x-Gateway-APIKey}"),
        ("${request.query.added}", "yes please"),
        ("${request.query.a}", "replaced"),
        ("${request.path.id}", "7 7"),
        remove=["${request.headers.x-Gateway-APIKey}", "${request.query.drop}", "X-Plain"],
    )
    config["methodTransformation"] = {"method": "POST"}
    await add_action(node, api, "requestTransformation", STAGE, transformation(config))
    r = await node.gw.get("/Echo/1.0/echo/42?a=1&drop=x&keep=k",
                          headers={"x-Gateway-APIKey": "secret", "X-Plain": "p", "X-Other": "o"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["method"] == "POST"
    assert seen["headers"]["apikey"] == "key-secret"
    assert "x-gateway-apikey" not in seen["headers"] and "x-plain" not in seen["headers"]
    assert seen["headers"]["x-other"] == "o"
    path, _, query = seen["path"].partition("?")
    assert path == "/echo/7%207"
    assert sorted(query.split("&")) == ["a=replaced", "added=yes%20please", "keep=k"]


async def test_json_payload_set_and_remove_by_jsonpath(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    config = edits(
        ("${request.payload.jsonPath[$.customer.tier]}", "gold"),
        ("${request.payload.jsonPath[$.source]}", "${request.headers.x-channel}"),
        remove=["${request.payload.jsonPath[$.customer.password]}"],
    )
    await add_action(node, api, "requestTransformation", STAGE, transformation(config))
    body = {"customer": {"name": "Ann", "password": "pw", "tier": "basic"}, "items": [1, 2]}
    r = await node.gw.post("/Echo/1.0/echo", json=body, headers={"X-Channel": "web"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert json.loads(seen["body"]) == {"customer": {"name": "Ann", "tier": "gold"}, "items": [1, 2],
                                        "source": "web"}
    assert seen["body_length"] == len(seen["body"].encode())  # Content-Length follows the new body
    # Failure path: a body that is not JSON under a JSONPath edit is the client's error, with a stable key.
    bad = await node.gw.post("/Echo/1.0/echo", content=b"<not-json/>", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert "could not be transformed" in bad.json()["Exception"] and "not valid JSON" in bad.json()["Exception"]


async def test_xml_payload_by_xpath_and_xslt(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    config = {
        "xsltTransformation": {"xsltFile": XSLT},
        **edits(("${request.payload.xpath[/purchase/@id]}", "X-${request.payload.xpath[/purchase/@id]}")),
    }
    await add_action(node, api, "requestTransformation", STAGE, transformation(config))
    r = await node.gw.post("/Echo/1.0/reflect", content=b'<order id="9"><item>book</item><note>n</note></order>',
                           headers={"Content-Type": "application/xml"})
    assert r.status_code == 200, r.text
    assert r.text.endswith('<purchase id="X-9">book</purchase>')
    not_xml = await node.gw.post("/Echo/1.0/reflect", content=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert not_xml.status_code == 400 and "not well-formed XML" in not_xml.json()["Exception"]


async def test_xml_to_json_honours_keep_string(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    await add_action(node, api, "requestTransformation", STAGE, transformation({"payloadConversion": "xmlToJson"}))
    xml = b"<EmployeeDetail><ID>12345</ID><Name>John</Name><Tag>a</Tag><Tag>b</Tag></EmployeeDetail>"
    r = await node.gw.post("/Echo/1.0/reflect", content=xml, headers={"Content-Type": "application/xml"})
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"EmployeeDetail": {"ID": "12345", "Name": "John", "Tag": ["a", "b"]}}
    await node.admin.put("/configurations/settings", json={"preferredSettings": {
        "extendedKeys": {"xmlToJSONConversion_keepString": "false"}}})
    await node.reload()
    r = await node.gw.post("/Echo/1.0/reflect", content=xml, headers={"Content-Type": "application/xml"})
    assert r.json() == {"EmployeeDetail": {"ID": 12345, "Name": "John", "Tag": ["a", "b"]}}


async def test_json_to_xml(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    await add_action(node, api, "requestTransformation", STAGE, transformation({"payloadConversion": "jsonToXml"}))
    r = await node.gw.post("/Echo/1.0/reflect", json={"order": {"@id": "1", "item": ["a", "b"], "qty": 2}})
    assert r.headers["content-type"] == "application/xml"
    assert r.text.endswith('<order id="1"><item>a</item><item>b</item><qty>2</qty></order>')
    bad = await node.gw.post("/Echo/1.0/reflect", json={"not valid name": 1})
    assert bad.status_code == 400 and "not a valid XML element name" in bad.json()["Exception"]


async def test_conditions_decide(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    conditions = {"logicalConnector": "AND", "transformationCondition": [
        {"transformationVariable": "${request.httpMethod}", "transformationConditionOperator": "equals",
         "transformationConditionValue": "POST"},
        {"transformationVariable": "${request.payload.jsonPath[$.amount]}",
         "transformationConditionOperator": "greaterThan", "transformationConditionValue": "100"},
    ]}
    await add_action(node, api, "requestTransformation", STAGE,
                     transformation(edits(("${request.headers.X-Review}", "manual")), conditions))
    big = await node.gw.post("/Echo/1.0/echo", json={"amount": 500})
    small = await node.gw.post("/Echo/1.0/echo", json={"amount": 5})
    get = await node.gw.get("/Echo/1.0/echo")
    assert big.json()["headers"].get("x-review") == "manual"
    assert "x-review" not in small.json()["headers"] and "x-review" not in get.json()["headers"]


async def test_header_only_transformation_keeps_streaming(sqlite_node: Node, upstream: Upstream) -> None:
    api = await sqlite_node.create_api(echo_spec(upstream.url))
    await add_action(sqlite_node, api, "requestTransformation", STAGE,
                     transformation(edits(("${request.headers.X-A}", "1"))))
    handler = sqlite_node.portico.gateway.snapshot.apis_by_id[api["id"]].plan.request[0]  # type: ignore[union-attr]
    assert handler.needs_request_body is False
    r = await sqlite_node.gw.post("/Echo/1.0/sink", content=b"x" * 200_000)
    assert r.json() == {"received": 200_000}


async def test_config_validation_names_the_field(sqlite_node: Node) -> None:
    node = sqlite_node
    cases = [
        (edits(("${request.payload.jsonPath[$..[}", "x")), "invalid JSONPath"),
        (edits(("${request.payload.xpath[//a[}", "x")), "invalid XPath"),
        (edits(("${response.statusCode}", "200")), "cannot be set by a request transformation"),
        (edits(("bad header", "x")), "neither one ${...} reference nor a header name"),
        (edits(remove=["${request.path.id}"]), "cannot be removed"),
        ({"xsltTransformation": {"xsltFile": "<not-xslt/>"}}, "invalid XSLT stylesheet"),
        ({"xsltTransformation": {"xsltFile": "<x"}}, "invalid XSLT stylesheet"),
        ({"payloadConversion": "yamlToJson"}, "payloadConversion"),
        ({"methodTransformation": {"method": "BREW"}}, "method"),
    ]
    for config, reason in cases:
        details = await bad_action(node, "requestTransformation", transformation(config))
        assert details.startswith("requestTransformation: parameter 'requestTransformationConfiguration"), details
        assert reason in details, details
    missing = await bad_action(node, "requestTransformation", wire({"transformationConditions": {}}))
    assert "requestTransformationConfiguration" in missing
    op = await bad_action(node, "requestTransformation", transformation(edits(), {"transformationCondition": {
        "transformationVariable": "${request.httpMethod}", "transformationConditionOperator": "range",
        "transformationConditionValue": "abc"}}))
    assert "transformationConditions.transformationCondition" in op and "low-high" in op


async def test_whole_payload_and_resource_path(node: Node, upstream: Upstream) -> None:
    """Payload transformation: a new body built from values of the old one, sent to another resource."""
    api = await node.create_api(echo_spec(upstream.url))
    config = edits(
        ("${request.payload}", '<user name="${request.payload.jsonPath[$.name]}"/>'),
        ("${request.headers.Content-Type}", "application/xml"),
        ("${request.path}", "/reflect"),
    )
    await add_action(node, api, "requestTransformation", STAGE, transformation(config))
    r = await node.gw.post("/Echo/1.0/echo", json={"name": "Ann", "age": 3})
    assert r.status_code == 200, r.text
    assert r.text == '<user name="Ann"/>' and r.headers["content-type"] == "application/xml"


async def test_large_bodies_are_transformed_off_the_event_loop(sqlite_node: Node, upstream: Upstream) -> None:
    node = sqlite_node
    api = await node.create_api(echo_spec(upstream.url))
    await add_action(node, api, "requestTransformation", STAGE,
                     transformation(edits(("${request.payload.jsonPath[$.seen]}", "request"))))
    await add_action(node, api, "responseTransformation", "responseProcessing", wire({
        "responseTransformationConfiguration": edits(("${response.payload.jsonPath[$.answered]}", "response"))}))
    big = {"blob": "x" * 1_500_000}
    r = await node.gw.post("/Echo/1.0/reflect", json=big)
    assert r.status_code == 200, r.text[:200]
    assert r.json() == {**big, "seen": "request", "answered": "response"}
