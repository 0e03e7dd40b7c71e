"""The stored apiDefinition model (ENDPOINTS.md §17.1) and operations()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from portico.specs import import_spec, operations
from portico.specs.normalize import source_format_of

DATA = Path(__file__).parent / "data"


def definition_of(name: str) -> dict[str, Any]:
    return import_spec((DATA / name).read_bytes()).definition


def test_openapi_model_fills_both_views() -> None:
    definition = definition_of("petstore_v3.json")
    assert definition["type"] == "rest"
    assert definition["info"]["title"] == "Swagger Petstore"
    # Swagger-2 view derived from the first server (variables resolved).
    assert definition["host"] == "eu.petstore.example.com:8443"
    assert definition["basePath"] == "/v1"
    assert definition["schemes"] == ["https", "http"]
    # OpenAPI 3 view kept as written.
    assert definition["servers"][0]["url"] == "https://{region}.petstore.example.com:{port}/v1"
    assert set(definition["components"]) == {"parameters", "schemas", "responses", "securitySchemes"}
    assert definition["definitions"] == {}
    assert definition["securityDefinitions"] == {}
    assert definition["tags"] == [{"name": "pets", "description": "Everything about pets"}]
    assert definition["x-owner"] == "pets-team"
    json.dumps(definition)  # stored as JSON


def test_swagger_model_fills_both_views() -> None:
    definition = definition_of("petstore_v2.json")
    assert (definition["host"], definition["basePath"]) == ("petstore.swagger.io", "/v2")
    assert definition["schemes"] == ["https", "http"]
    assert definition["servers"] == [
        {"url": "https://petstore.swagger.io/v2"},
        {"url": "http://petstore.swagger.io/v2"},
    ]
    assert definition["components"] == {}
    assert set(definition["definitions"]) == {"Pet", "Category", "Error"}
    assert set(definition["securityDefinitions"]) == {"petstore_auth", "api_key", "basic"}
    assert definition["consumes"] == ["application/json"]
    assert definition["produces"] == ["application/json", "application/xml"]
    assert set(definition["parameters"]) == {"Limit", "PetBody"}


def test_paths_and_operations_carry_enabled_and_scopes() -> None:
    paths = definition_of("petstore_v3.json")["paths"]
    item = paths["/pets/{petId}"]
    assert item["enabled"] is True
    assert item["parameters"] == [{"$ref": "#/components/parameters/PetId"}]
    assert item["x-internal"] is True
    operation = item["get"]
    assert operation["enabled"] is True
    assert operation["scopes"] == []
    assert operation["operationId"] == "showPetById"
    assert "content" in operation["responses"]["200"]
    assert paths["/pets"]["summary"] == "Pets collection"
    assert "enabled" not in paths["/pets"]["get"]["parameters"][0]


def test_swagger_operations_keep_their_native_shape() -> None:
    operation = definition_of("petstore_v2.json")["paths"]["/pet"]["post"]
    assert operation["parameters"][0]["in"] == "body"
    assert "requestBody" not in operation


def test_operations_lists_enabled_operations_in_order() -> None:
    definition = definition_of("petstore_v3.json")
    assert [(p, m) for p, m, _ in operations(definition)] == [
        ("/pets", "get"),
        ("/pets", "post"),
        ("/pets/{petId}", "get"),
        ("/pets/{petId}", "delete"),
        ("/pets/{petId}/photo", "post"),
    ]
    definition["paths"]["/pets"]["post"]["enabled"] = False
    definition["paths"]["/pets/{petId}"]["enabled"] = False
    found = operations(definition)
    assert [(p, m) for p, m, _ in found] == [("/pets", "get"), ("/pets/{petId}/photo", "post")]
    assert found[0][2]["operationId"] == "listPets"


def test_operations_of_an_empty_definition() -> None:
    assert operations({}) == []
    assert operations({"paths": {"/a": {"summary": "no methods"}}}) == []


def test_source_format_of_hand_written_definitions() -> None:
    assert source_format_of({"sourceFormat": "swagger"}) == "swagger"
    assert source_format_of({"paths": {"/a": {"post": {"requestBody": {}}}}}) == "openapi"
    assert source_format_of({"paths": {"/a": {"post": {"parameters": [{"in": "body"}]}}}}) == "swagger"
    assert source_format_of({"definitions": {"Pet": {}}, "servers": [{"url": "/"}]}) == "swagger"
    assert source_format_of({"components": {"schemas": {}}, "definitions": {}}) == "openapi"
    assert source_format_of({"info": {"title": "t"}}) == "openapi"
