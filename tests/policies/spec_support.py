"""Shared helpers for the policy tests of issue 3 (spec validation, CORS, errors, IAM, mocking)."""

from __future__ import annotations

from typing import Any

from tests.support.node import Node

PET_XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="pet"><xs:complexType><xs:sequence>
    <xs:element name="name" type="xs:string"/><xs:element name="age" type="xs:integer"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""


def pet_spec(url: str, title: str = "Pets") -> dict[str, Any]:
    """An OpenAPI 3 document for the echo upstream: /echo takes a Pet (JSON via $ref, or XML with
    an XSD), a required integer query parameter and an enum header; /echo/{id} has an integer id."""
    pet_ref = {"$ref": "#/components/schemas/Pet"}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0"},
        "servers": [{"url": url}],
        "paths": {
            "/echo": {
                "post": {
                    "parameters": [
                        {"name": "limit", "in": "query", "required": True,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 10}},
                        {"name": "X-Mode", "in": "header", "schema": {"type": "string", "enum": ["fast", "slow"]}},
                        {"$ref": "#/components/parameters/Tag"},
                    ],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": pet_ref},
                        "application/xml": {"schema": pet_ref, "x-xsd": PET_XSD},
                    }},
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["method"], "properties": {"method": {"type": "string"}}}}}}},
                },
                "get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["never"], "properties": {"never": {"type": "string"}}}}}}}},
            },
            "/echo/{id}": {"get": {
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "ok"}}}},
        },
        "components": {
            "parameters": {"Tag": {"name": "tag", "in": "query", "schema": {
                "type": "string", "pattern": "^[a-z]+$"}}},
            "schemas": {
                "Pet": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "age": {"type": "integer", "nullable": True},
                    "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}}},
                "Tag": {"type": "string", "maxLength": 5},
            },
        },
    }


async def post_action(node: Node, template: str, parameters: list[Any]) -> Any:
    """POST /policyActions; returns the httpx response (for config-validation tests)."""
    return await node.admin.post("/policyActions", json={"policyAction": {
        "names": [{"value": template, "locale": "English"}], "templateKey": template, "parameters": parameters}})


def flags(**values: bool) -> list[dict[str, Any]]:
    return [{"templateKey": k, "values": [str(v).lower()]} for k, v in values.items()]
