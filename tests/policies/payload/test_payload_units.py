"""Unit tests of the shared payload machinery: conversion, XML safety, XSLT sandbox, references,
conditions and masking, without a gateway."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from portico.policies.params import parameters_to_mapping
from portico.policies.payload import PayloadError
from portico.policies.payload.conditions import TransformationCondition, _compare
from portico.policies.payload.convert import json_to_xml, xml_to_json
from portico.policies.payload.documents import compile_xslt, kind_of, load_xml, run_xslt
from portico.policies.payload.expressions import parse_ref, split_references
from portico.policies.payload.masking import DataMaskingConfig, Masker
from tests.policies.payload_support import wire


def test_xml_to_json_types_attributes_and_repeats() -> None:
    xml = b'<a x="1"><b>2</b><b>true</b><c>2.5</c><d>text</d><e/></a>'
    assert json.loads(xml_to_json(xml, keep_string=True)) == {
        "a": {"@x": "1", "b": ["2", "true"], "c": "2.5", "d": "text", "e": ""}}
    assert json.loads(xml_to_json(xml, keep_string=False)) == {
        "a": {"@x": 1, "b": [2, True], "c": 2.5, "d": "text", "e": ""}}


def test_json_to_xml_round_trip_and_wrapping() -> None:
    assert json_to_xml(b'{"a": {"@x": "1", "b": [1, 2]}}').endswith(b'<a x="1"><b>1</b><b>2</b></a>')
    assert json_to_xml(b'{"a": 1, "b": null}').endswith(b"<root><a>1</a><b></b></root>")
    assert json_to_xml(b"[1, 2]").endswith(b"<root><item>1</item><item>2</item></root>")
    with pytest.raises(PayloadError):
        json_to_xml(b'{"a": [[1]]}')
    with pytest.raises(PayloadError):
        json_to_xml(b"not json")


def test_xml_parsing_refuses_doctype_and_never_reads_entities() -> None:
    with pytest.raises(PayloadError, match="DOCTYPE"):
        load_xml(b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/hostname">]><a>&e;</a>')
    with pytest.raises(PayloadError, match="not well-formed"):
        load_xml(b"<a>")


def test_xslt_may_not_read_documents() -> None:
    sheet = ('<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
             '<xsl:template match="/"><r><xsl:copy-of select="document(\'file:///etc/passwd\')"/></r>'
             "</xsl:template></xsl:stylesheet>")
    xslt = compile_xslt(sheet)
    with pytest.raises(PayloadError, match="XSLT transformation failed"):
        run_xslt(xslt, b"<a/>")
    with pytest.raises(ValueError, match="invalid XSLT"):
        compile_xslt('<!DOCTYPE x [<!ENTITY e "x">]><xsl:stylesheet version="1.0" '
                     'xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>')


def test_kind_of() -> None:
    assert kind_of(b"application/vnd.api+json; charset=utf-8", b"") == "json"
    assert kind_of(b"text/xml", b"") == "xml"
    assert kind_of(b"text/plain", b"{}") == "text"
    assert kind_of(None, b"  [1]") == "json" and kind_of(None, b"<a/>") == "xml" and kind_of(None, b"x") == "text"


def test_references() -> None:
    assert split_references("a${request.payload.regex[[0-9]{3}]}b${x}") == [
        (False, "a"), (True, "request.payload.regex[[0-9]{3}]"), (False, "b"), (True, "x")]
    ref = parse_ref("request.payload.jsonPath[$.a[0]]")
    assert ref is not None and ref.kind == "jsonPath" and ref.arg == "$.a[0]"
    short = parse_ref("request.payload.account.number")
    assert short is not None and short.kind == "jsonPath" and short.arg == "$.account.number"
    assert parse_ref("response.header.X-A") == parse_ref("response.headers.x-a")
    assert parse_ref("apiName") is None and parse_ref("request.query") is None
    with pytest.raises(ValueError, match="invalid regular expression"):
        parse_ref("request.payload.regex[(]")


@pytest.mark.parametrize(("op", "expected", "value", "result"), [
    ("equals", "a", "a", True), ("equalsIgnoreCase", "A", "a", True), ("notEquals", "a", "a", False),
    ("notEqualsIgnoreCase", "A", "b", True), ("contains", "b", "abc", True), ("notContains", "b", "abc", False),
    ("exists", "", "", False), ("notExists", "", "", True), ("range", "1-10", "10", True),
    ("range", "1-10", "11", False), ("greaterThan", "5", "6", True), ("greaterThan", "5", "x", False),
    ("lessThan", "5", "4.5", True),
])
def test_condition_operators(op: str, expected: str, value: str, result: bool) -> None:
    assert _compare(op, expected)(value) is result  # type: ignore[arg-type]


def test_condition_value_checked() -> None:
    with pytest.raises(ValidationError, match="needs a number"):
        TransformationCondition(transformationVariable="${request.httpMethod}",
                                transformationConditionOperator="lessThan", transformationConditionValue="x")


def test_masker_regex_mask_is_literal_and_json_mask_never_creates() -> None:
    config = DataMaskingConfig.model_validate(parameters_to_mapping(wire({
        "jpathMasking": {"maskingCriteria": {"action": "$.missing", "maskingType": "mask", "maskValue": "X"}},
        "regexMasking": {"maskingCriteria": {"action": "(\\d+)", "maskingType": "mask", "maskValue": "\\1#"}},
    })))
    assert Masker(config).apply(b'{"n": "12"}', b"application/json") == b'{"n":"\\1#"}'
