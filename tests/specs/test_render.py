"""render(): same-format round trips and Swagger 2 <-> OpenAPI 3 conversion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portico.specs import SpecError, import_spec, render
from portico.specs.load import load_document

DATA = Path(__file__).parent / "data"
ALL = ["petstore_v3.json", "petstore_v31.yaml", "petstore_v2.json", "petstore_v2.yaml"]


def original(name: str) -> dict[str, Any]:
    return load_document((DATA / name).read_bytes())[0]


def definition_of(name: str) -> dict[str, Any]:
    return import_spec((DATA / name).read_bytes()).definition


def reimport(doc: dict[str, Any]) -> dict[str, Any]:
    """Rendered documents must pass the full validator again."""
    return import_spec(json.dumps(doc).encode()).definition


@pytest.mark.parametrize("name", ["petstore_v3.json", "petstore_v31.yaml"])
def test_openapi_round_trip_gives_back_the_document(name: str) -> None:
    assert render(definition_of(name), "openapi") == original(name)


def test_swagger_json_round_trip_gives_back_the_document() -> None:
    assert render(definition_of("petstore_v2.json"), "swagger") == original("petstore_v2.json")


def test_swagger_yaml_round_trip_fills_in_the_version_string() -> None:
    expected = original("petstore_v2.yaml") | {"swagger": "2.0"}
    assert render(definition_of("petstore_v2.yaml"), "swagger") == expected


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("fmt", ["openapi", "swagger"])
def test_every_rendering_is_a_valid_document(name: str, fmt: str) -> None:
    rendered = render(definition_of(name), fmt)
    assert ("openapi" if fmt == "openapi" else "swagger") in rendered
    reimport(rendered)


@pytest.mark.parametrize("fmt", ["openapi", "swagger"])
def test_portico_keys_are_dropped(fmt: str) -> None:
    text = json.dumps(render(definition_of("petstore_v3.json"), fmt))
    for key in ('"enabled"', '"scopes": []', '"type": "rest"', '"sourceFormat"', '"sourceVersion"'):
        assert key not in text


def test_disabled_operations_are_still_rendered() -> None:
    definition = definition_of("petstore_v3.json")
    definition["paths"]["/pets"]["post"]["enabled"] = False
    assert "post" in render(definition, "openapi")["paths"]["/pets"]


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(SpecError, match="format: unsupported format 'raml'; expected 'openapi' or 'swagger'"):
        render(definition_of("petstore_v3.json"), "raml")


def test_render_does_not_modify_the_model() -> None:
    definition = definition_of("petstore_v2.json")
    before = json.dumps(definition)
    render(definition, "openapi")
    render(definition, "swagger")
    assert json.dumps(definition) == before


# --- Swagger 2 -> OpenAPI 3 ------------------------------------------------------------


def test_swagger_as_openapi_servers_and_components() -> None:
    doc = render(definition_of("petstore_v2.json"), "openapi")
    assert doc["openapi"] == "3.0.3"
    assert doc["servers"] == [
        {"url": "https://petstore.swagger.io/v2"},
        {"url": "http://petstore.swagger.io/v2"},
    ]
    components = doc["components"]
    assert set(components["schemas"]) == {"Pet", "Category", "Error"}
    pet = components["schemas"]["Pet"]
    assert pet["properties"]["category"] == {"$ref": "#/components/schemas/Category"}
    assert pet["properties"]["tag"] == {"type": "string", "nullable": True}
    assert pet["discriminator"] == {"propertyName": "petType"}
    assert components["parameters"] == {
        "Limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}}
    }
    assert components["requestBodies"]["PetBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Pet"
    }
    assert components["responses"]["BadRequest"]["content"]["application/xml"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert components["securitySchemes"] == {
        "petstore_auth": {
            "type": "oauth2",
            "flows": {
                "implicit": {
                    "authorizationUrl": "https://petstore.swagger.io/oauth/authorize",
                    "scopes": {"write:pets": "modify pets"},
                }
            },
        },
        "api_key": {"type": "apiKey", "name": "api_key", "in": "header"},
        "basic": {"type": "http", "scheme": "basic"},
    }
    assert "#/definitions/" not in json.dumps(doc)


def test_swagger_body_parameter_becomes_request_body() -> None:
    paths = render(definition_of("petstore_v2.json"), "openapi")["paths"]
    add = paths["/pet"]["post"]
    assert "parameters" not in add
    assert add["requestBody"] == {
        "description": "Pet object",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
        "required": True,
        "x-codegen-request-body-name": "pet",
    }
    assert paths["/pet"]["put"]["requestBody"] == {"$ref": "#/components/requestBodies/PetBody"}
    assert "consumes" not in paths["/pet"]["put"]


def test_swagger_form_parameters_become_request_body() -> None:
    paths = render(definition_of("petstore_v2.json"), "openapi")["paths"]
    form = paths["/pet/{petId}"]["post"]["requestBody"]
    assert form == {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "new name"},
                        "status": {"type": "string"},
                    },
                    "required": ["status"],
                }
            }
        },
        "required": True,
    }
    upload = paths["/pet/{petId}/uploadImage"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["properties"]["file"] == {
        "type": "string",
        "format": "binary",
    }


def test_swagger_parameters_and_responses_are_converted() -> None:
    get = render(definition_of("petstore_v2.json"), "openapi")["paths"]["/pet/findByStatus"]["get"]
    status, fields, limit = get["parameters"]
    assert status["schema"]["items"]["enum"] == ["available", "pending", "sold"]
    assert (status["style"], status["explode"]) == ("form", True)  # multi
    assert (fields["style"], fields["explode"]) == ("form", False)  # csv, the Swagger default
    assert "collectionFormat" not in status
    assert limit == {"$ref": "#/components/parameters/Limit"}
    ok = get["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "application/xml"}
    assert ok["content"]["application/json"]["example"] == [{"id": 1, "name": "Rex"}]
    assert ok["headers"]["X-Rate-Limit"] == {
        "description": "calls per hour",
        "schema": {"type": "integer", "format": "int32"},
    }
    assert get["responses"]["400"] == {"$ref": "#/components/responses/BadRequest"}


def test_swagger_path_parameters_stay_on_the_path() -> None:
    item = render(definition_of("petstore_v2.json"), "openapi")["paths"]["/pet/{petId}"]
    assert item["parameters"] == [
        {"name": "petId", "in": "path", "required": True, "schema": {"type": "integer", "format": "int64"}}
    ]


def test_relative_swagger_base_path_becomes_relative_server() -> None:
    assert render(definition_of("petstore_v2.yaml"), "openapi")["servers"] == [{"url": "/api"}]


# --- OpenAPI 3 -> Swagger 2 ------------------------------------------------------------


def test_openapi_as_swagger_location_and_definitions() -> None:
    doc = render(definition_of("petstore_v3.json"), "swagger")
    assert doc["swagger"] == "2.0"
    assert (doc["host"], doc["basePath"], doc["schemes"]) == (
        "eu.petstore.example.com:8443",
        "/v1",
        ["https", "http"],
    )
    assert set(doc["definitions"]) == {"Pet", "Owner", "Pets", "Error"}
    assert doc["definitions"]["Pet"]["properties"]["tag"] == {"type": "string", "x-nullable": True}
    assert doc["definitions"]["Pets"]["items"] == {"$ref": "#/definitions/Pet"}
    assert doc["parameters"]["PetId"] == {
        "name": "petId", "in": "path", "description": "The pet id", "required": True,
        "type": "integer", "format": "int64",
    }  # fmt: skip
    assert doc["responses"]["Error"]["schema"] == {"$ref": "#/definitions/Error"}
    assert "#/components/" not in json.dumps(doc)


def test_openapi_security_schemes_swagger_cannot_express_are_dropped() -> None:
    doc = render(definition_of("petstore_v3.json"), "swagger")
    assert set(doc["securityDefinitions"]) == {"api_key", "petstore_auth"}  # not openIdConnect
    assert doc["securityDefinitions"]["petstore_auth"]["flow"] == "implicit"
    assert doc["security"] == [{"api_key": []}]


def test_openapi_request_body_becomes_body_parameter() -> None:
    post = render(definition_of("petstore_v3.json"), "swagger")["paths"]["/pets"]["post"]
    assert post["consumes"] == ["application/json", "application/xml"]
    assert post["parameters"] == [
        {"name": "body", "in": "body", "description": "Pet to add", "required": True,
         "schema": {"$ref": "#/definitions/Pet"}},
    ]  # fmt: skip
    assert "requestBody" not in post


def test_openapi_multipart_body_becomes_form_parameters() -> None:
    post = render(definition_of("petstore_v3.json"), "swagger")["paths"]["/pets/{petId}/photo"]["post"]
    assert post["consumes"] == ["multipart/form-data"]
    assert post["parameters"] == [
        {"name": "file", "in": "formData", "description": "the photo", "required": True, "type": "file"},
        {"name": "caption", "in": "formData", "type": "string"},
    ]


def test_openapi_parameters_and_responses_are_converted() -> None:
    get = render(definition_of("petstore_v3.json"), "swagger")["paths"]["/pets"]["get"]
    limit, tags = get["parameters"]  # the cookie parameter has no Swagger 2 equivalent
    assert limit == {"name": "limit", "in": "query", "required": False, "type": "integer", "format": "int32",
                     "maximum": 100}  # fmt: skip
    assert tags == {"name": "tags", "in": "query", "type": "array", "items": {"type": "string"},
                    "collectionFormat": "csv"}  # fmt: skip
    assert get["produces"] == ["application/json"]
    assert get["responses"]["200"] == {
        "description": "A paged array of pets",
        "schema": {"$ref": "#/definitions/Pets"},
        "headers": {"x-next": {"description": "next page", "type": "string"}},
    }
    assert get["responses"]["default"] == {"$ref": "#/responses/Error"}
    show = render(definition_of("petstore_v3.json"), "swagger")["paths"]["/pets/{petId}"]["get"]
    assert show["responses"]["200"]["examples"] == {"application/json": {"id": 1, "name": "Rex"}}


def test_openapi_31_as_swagger_keeps_new_fields_as_extensions() -> None:
    doc = render(definition_of("petstore_v31.yaml"), "swagger")
    assert doc["info"] == {"title": "Petstore 3.1", "version": "2.0", "x-summary": "YAML flavoured"}
    assert doc["basePath"] == "/api/v3" and "host" not in doc
    limit = doc["paths"]["/pets"]["get"]["parameters"][0]
    assert limit["type"] == "integer"  # ["integer", "null"] narrowed
    put = doc["paths"]["/pets/{id}"]["put"]
    assert put["parameters"][0]["schema"] == {"$ref": "#/definitions/Pet"}
    add = doc["paths"]["/pets"]["post"]  # requestBody $ref inlined: Swagger 2 has no requestBodies
    assert add["parameters"][0]["required"] is True


def test_double_conversion_keeps_the_essentials() -> None:
    swagger = original("petstore_v2.json")
    back = render(reimport(render(definition_of("petstore_v2.json"), "openapi")), "swagger")
    assert back["host"] == swagger["host"] and back["basePath"] == swagger["basePath"]
    assert back["schemes"] == swagger["schemes"]
    assert back["definitions"] == swagger["definitions"]
    assert back["paths"]["/pet"]["post"]["parameters"] == swagger["paths"]["/pet"]["post"]["parameters"]
    assert back["paths"]["/pet/{petId}"]["parameters"] == swagger["paths"]["/pet/{petId}"]["parameters"]
    status = back["paths"]["/pet/findByStatus"]["get"]["parameters"][0]
    assert status == swagger["paths"]["/pet/findByStatus"]["get"]["parameters"][0]
    assert back["securityDefinitions"] == swagger["securityDefinitions"]
    for path, item in swagger["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                assert back["paths"][path][method]["operationId"] == operation["operationId"]


def test_hand_written_definition_renders_both_ways() -> None:
    # An inline "from scratch" apiDefinition in the webMethods shape (no sourceFormat).
    definition = {
        "type": "rest",
        "info": {"title": "Inline", "version": "1.0"},
        "host": "api.example.com",
        "basePath": "/v1",
        "schemes": ["https"],
        "paths": {"/things": {"get": {"responses": {"200": {"description": "ok"}},
                                      "enabled": True, "scopes": []},
                              "enabled": True}},
    }  # fmt: skip
    openapi = render(definition, "openapi")
    assert openapi["servers"] == [{"url": "https://api.example.com/v1"}]
    assert openapi["paths"] == {"/things": {"get": {"responses": {"200": {"description": "ok"}}}}}
    swagger = render(definition, "swagger")
    assert (swagger["host"], swagger["basePath"], swagger["schemes"]) == ("api.example.com", "/v1", ["https"])
    reimport(openapi)
    reimport(swagger)
