"""responseTransformation: the gateway's answer after header, status and payload edits, conditions
on the response, failure on a native payload that does not fit, and config validation."""

from __future__ import annotations

from typing import Any

from tests.gateway.test_runtime import add_action
from tests.policies.payload_support import bad_action, echo_spec, wire
from tests.support.node import Node
from tests.support.upstream import Upstream

STAGE = "responseProcessing"


def transformation(config: dict[str, Any], conditions: dict[str, Any] | None = None,
                   key: str = "responseTransformationConfiguration") -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    if conditions is not None:
        params["transformationConditions"] = conditions
    params[key] = config
    return wire(params)


def edits(*pairs: tuple[str, str], remove: list[str] | None = None) -> dict[str, Any]:
    common: dict[str, Any] = {}
    if remove:
        common["remove"] = remove
    if pairs:
        common["addOrModify"] = [{"transformationVariable": k, "transformationValue": v} for k, v in pairs]
    return {"commonTransformation": common}


async def test_headers_status_and_json_payload(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    config = edits(
        ("${response.headers.X-Served-By}", "portico ${request.httpMethod}"),
        ("${response.statusCode}", "201"),
        ("${response.payload.jsonPath[$.summary]}", "${response.payload.jsonPath[$.method]} ${response.statusCode}"),
        remove=["${response.payload.jsonPath[$.headers]}", "${response.payload.jsonPath[$.body]}"],
    )
    await add_action(node, api, "responseTransformation", STAGE, transformation(config))
    r = await node.gw.get("/Echo/1.0/echo")
    assert r.status_code == 201, r.text
    assert r.headers["x-served-by"] == "portico GET"
    assert r.json() == {"method": "GET", "path": "/echo", "body_length": 0, "summary": "GET 200"}
    # Failure path: the native answer is not JSON under a JSONPath edit: 502 with a stable message.
    bad = await node.gw.post("/Echo/1.0/reflect", content=b"plain text", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 502 and "native response could not be transformed" in bad.json()["Exception"]


async def test_reference_example_shape_with_request_names(node: Node, upstream: Upstream) -> None:
    """The reference's example names the group requestTransformationConfiguration and request headers."""
    api = await node.create_api(echo_spec(upstream.url))
    conditions = {"logicalConnector": "OR", "transformationCondition": [
        {"transformationVariable": "${request.httpMethod}", "transformationConditionOperator": "equals",
         "transformationConditionValue": "POST"}]}
    config = edits(("${request.headers.APIKey}", "e10a54ce"), remove=["${request.headers.Content-Type}"])
    config["methodTransformation"] = {"method": "CUSTOM"}
    await add_action(node, api, "responseTransformation", STAGE,
                     transformation(config, conditions, key="requestTransformationConfiguration"))
    post = await node.gw.post("/Echo/1.0/echo", content=b"x")
    assert post.headers["apikey"] == "e10a54ce" and "content-type" not in post.headers
    get = await node.gw.get("/Echo/1.0/echo")
    assert "apikey" not in get.headers and get.headers["content-type"] == "application/json"


async def test_xml_payload_xpath_and_conversion(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    # The conversion runs before the edits of its group: edit the XML in a first group, convert in a second.
    params = wire({"responseTransformationConfiguration": [
        edits(("${response.payload.xpath[//price]}", "0"), remove=["${response.payload.xpath[//secret]}"]),
        {"payloadConversion": "xmlToJson"}]})
    await add_action(node, api, "responseTransformation", STAGE, params)
    xml = b'<?xml version="1.0"?><item sku="a1"><price>10</price><secret>s</secret>text</item>'
    r = await node.gw.post("/Echo/1.0/reflect", content=xml, headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text
    assert r.json() == {"item": {"@sku": "a1", "price": "0", "#text": "text"}}


async def test_doctype_and_entities_are_refused(node: Node, upstream: Upstream) -> None:
    api = await node.create_api(echo_spec(upstream.url))
    await add_action(node, api, "responseTransformation", STAGE, transformation({"payloadConversion": "xmlToJson"}))
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b"<x>&b;</x>")
    r = await node.gw.post("/Echo/1.0/reflect", content=bomb, headers={"Content-Type": "application/xml"})
    assert r.status_code == 502 and "DOCTYPE" in r.json()["Exception"]
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    r = await node.gw.post("/Echo/1.0/reflect", content=xxe, headers={"Content-Type": "application/xml"})
    assert r.status_code == 502 and "root:" not in r.text


async def test_config_validation_names_the_field(sqlite_node: Node) -> None:
    node = sqlite_node
    cases = [
        (edits(("${response.payload.jsonPath[nope]}", "x")), "must start with '$'"),
        (edits(("${request.query.a}", "x")), "cannot be set by a response transformation"),
        (edits(("${response.statusCode}", "99")), "not an HTTP status code"),
        (edits(("${response.statusMessage}", "Fine")), "cannot be set by a response transformation"),
        ({"methodTransformation": {"method": "GET"}}, "requests only"),
        ({"xsltTransformation": {"xsltFile": '<xsl:stylesheet version="1.0" '
                                            'xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
                                            '<xsl:include href="file:///etc/passwd"/></xsl:stylesheet>'}},
         "invalid XSLT stylesheet"),
    ]
    for config, reason in cases:
        details = await bad_action(node, "responseTransformation", transformation(config))
        assert details.startswith("responseTransformation: parameter 'responseTransformationConfiguration"), details
        assert reason in details, details
    empty = await bad_action(node, "responseTransformation", [])
    assert "at least one transformation is required" in empty
