"""import_spec: formats, endpoints, declared type, structural and validator errors, $refs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from portico.specs import ImportedSpec, SpecError, import_spec

DATA = Path(__file__).parent / "data"


def load(name: str, **kwargs: Any) -> ImportedSpec:
    return import_spec((DATA / name).read_bytes(), **kwargs)


def as_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def minimal_openapi(**extra: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {}, **extra}


def test_openapi_30_json() -> None:
    spec = load("petstore_v3.json")
    assert (spec.source_format, spec.spec_version) == ("openapi", "3.0.3")
    assert (spec.title, spec.version, spec.description) == (
        "Swagger Petstore",
        "1.0.0",
        "A sample pet store.",
    )
    # Variables resolved with their defaults, trailing slash dropped, document order kept.
    assert spec.native_endpoints == [
        "https://eu.petstore.example.com:8443/v1",
        "http://eu.petstore.example.com:8443/v1",
    ]
    assert spec.relative_endpoints == []
    assert spec.source_text == (DATA / "petstore_v3.json").read_text()


def test_openapi_31_yaml_with_relative_server() -> None:
    spec = load("petstore_v31.yaml", declared_type="openapi")
    assert (spec.source_format, spec.spec_version) == ("openapi", "3.1.0")
    assert (spec.title, spec.version, spec.description) == ("Petstore 3.1", "2.0", "")
    assert spec.native_endpoints == ["/api/v3"]
    assert spec.relative_endpoints == ["/api/v3"]
    # YAML int status codes are stored as strings, like JSON documents have them.
    assert "200" in spec.definition["paths"]["/pets"]["get"]["responses"]
    assert spec.definition["webhooks"]["newPet"]["post"]["responses"] == {"200": {"description": "ok"}}


def test_swagger_20_json() -> None:
    spec = load("petstore_v2.json", declared_type="swagger")
    assert (spec.source_format, spec.spec_version) == ("swagger", "2.0")
    assert spec.title == "Swagger Petstore"
    assert spec.version == "1.0.6"
    assert spec.native_endpoints == ["https://petstore.swagger.io/v2", "http://petstore.swagger.io/v2"]


def test_swagger_20_yaml_without_host_and_unquoted_version() -> None:
    # `swagger: 2.0` unquoted is a YAML float; anchors (&pet / *pet) are allowed.
    spec = load("petstore_v2.yaml")
    assert spec.spec_version == "2.0"
    assert spec.native_endpoints == ["/api"]
    assert spec.relative_endpoints == ["/api"]
    assert spec.definition["definitions"]["NewPet"] == spec.definition["definitions"]["Pet"]


def test_swagger_without_schemes_defaults_to_http() -> None:
    doc = {"swagger": "2.0", "info": {"title": "T", "version": "1"}, "host": "api.example.com", "paths": {}}
    assert import_spec(as_bytes(doc)).native_endpoints == ["http://api.example.com"]


def test_openapi_without_servers_has_no_endpoints() -> None:
    spec = import_spec(as_bytes(minimal_openapi()))
    assert spec.native_endpoints == []
    assert spec.relative_endpoints == []
    assert (spec.definition["host"], spec.definition["basePath"], spec.definition["schemes"]) == ("", "/", [])


def test_server_variable_without_default_is_left_in_place() -> None:
    servers = [{"url": "https://{tenant}.example.com/{v}", "variables": {"v": {"default": "v2"}}}]
    spec = import_spec(as_bytes(minimal_openapi(servers=servers)), validate=False)
    assert spec.native_endpoints == ["https://{tenant}.example.com/v2"]


@pytest.mark.parametrize(
    ("name", "declared", "message"),
    [
        (
            "petstore_v3.json",
            "swagger",
            "type: 'swagger' does not match the document, which is OpenAPI 3.0.3",
        ),
        ("petstore_v2.json", "openapi", "type: 'openapi' does not match the document, which is Swagger 2.0"),
        ("petstore_v2.json", "raml", "type: 'raml' is not an OpenAPI type"),
    ],
)
def test_declared_type_must_match(name: str, declared: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load(name, declared_type=declared)


def test_declared_type_is_case_insensitive() -> None:
    assert load("petstore_v2.json", declared_type=" Swagger ").source_format == "swagger"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"info": {"title": "T"}, "paths": {}},
            "unsupported specification: expected 'openapi: 3.x' or 'swagger: 2.0'",
        ),
        (
            {"openapi": "2.0", "info": {"title": "T"}, "paths": {}},
            "openapi version '2.0'; expected 3.0.x or 3.1.x",
        ),
        ({"openapi": "4.0.0", "info": {"title": "T"}, "paths": {}}, "openapi version '4.0.0'"),
        ({"swagger": "1.2", "info": {"title": "T"}, "paths": {}}, "swagger version '1.2'; expected '2.0'"),
        ({"swagger": "2.0", "openapi": "3.0.0"}, "both 'openapi' and 'swagger'"),
        ({"openapi": "3.0.3", "paths": {}}, "info: required mapping missing"),
        ({"openapi": "3.0.3", "info": {"version": "1"}, "paths": {}}, "info.title: required string missing"),
        ({"openapi": "3.0.3", "info": {"title": "T"}}, "paths: required mapping missing"),
        ({"swagger": "2.0", "info": {"title": "T"}, "paths": []}, "paths: required mapping missing"),
        ({"openapi": "3.0.3", "info": {"title": "T"}, "paths": {"/a": None}}, "paths./a: expected a mapping"),
        (
            {"openapi": "3.0.3", "info": {"title": "T"}, "paths": {"/a": {"get": 1}}},
            "paths./a.get: expected an",
        ),
    ],
)
def test_structural_errors_even_without_validation(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        import_spec(as_bytes(doc), validate=False)


def test_openapi_31_may_omit_paths() -> None:
    doc = {"openapi": "3.1.0", "info": {"title": "T", "version": "1"}, "webhooks": {}}
    assert import_spec(as_bytes(doc)).definition["paths"] == {}


def test_validation_off_accepts_what_the_validator_rejects() -> None:
    doc = minimal_openapi(paths={"/pets": {"get": {"summary": "no responses"}}})
    with pytest.raises(SpecError, match=r"^paths\./pets\.get: 'responses' is a required property$"):
        import_spec(as_bytes(doc))
    spec = import_spec(as_bytes(doc), validate=False)
    assert spec.definition["paths"]["/pets"]["get"]["summary"] == "no responses"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"swagger": "2.0", "info": {"title": "T", "version": "1"},
             "paths": {"/p": {"get": {"parameters": [{"name": "a", "in": "query"}],
                                      "responses": {"200": {"description": "ok"}}}}}},
            "paths./p.get.parameters[0]: 'type' is a required property",
        ),
        (
            {"swagger": "2.0", "info": {"title": "T", "version": "1"},
             "paths": {"/p": {"get": {"responses": {"200": {"description": "ok",
                                                            "schema": {"type": "strin"}}}}}}},
            "paths./p.get.responses.200.schema.type: 'strin' is not one of",
        ),
        (
            minimal_openapi(paths={"/p": {"get": {"responses": {"200": {"content": {}}}}}}),
            "paths./p.get.responses.200: 'description' is a required property",
        ),
        (
            minimal_openapi(paths={"/p": {"get": {"responses": {"200": {"description": "ok"}}, "parameters": [
                {"name": "a", "in": "query", "style": "bogus", "schema": {"type": "string"}}]}}}),
            "paths./p.get.parameters[0].style: 'bogus' is not one of ['form'",
        ),
        (
            minimal_openapi(paths={"/p/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}}),
            "Path parameter 'id' for 'get' operation in '/p/{id}' was not resolved",
        ),
        (
            {"openapi": "3.0.3", "info": {"title": "T"}, "paths": {}},
            "info: 'version' is a required property",
        ),
    ],
)  # fmt: skip
def test_validator_errors_name_the_location(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as info:
        import_spec(as_bytes(doc))
    assert str(info.value).startswith(message)
    assert len(str(info.value)) <= 300


@pytest.mark.parametrize(
    ("ref", "where"),
    [
        (
            "other.yaml#/components/schemas/Pet",
            "paths./p.get.responses.200.content.application/json.schema.$ref",
        ),
        ("https://example.com/pet.json", "paths./p.get.responses.200.content.application/json.schema.$ref"),
        ("file:///etc/passwd", "paths./p.get.responses.200.content.application/json.schema.$ref"),
    ],
)
def test_external_refs_are_rejected_even_without_validation(ref: str, where: str) -> None:
    content = {"application/json": {"schema": {"$ref": ref}}}
    doc = minimal_openapi(
        paths={"/p": {"get": {"responses": {"200": {"description": "ok", "content": content}}}}}
    )
    for validate in (True, False):
        with pytest.raises(SpecError) as info:
            import_spec(as_bytes(doc), validate=validate)
        assert str(info.value) == (
            f"{where}: external reference {ref!r} is not supported; "
            "bundle the specification into a single document"
        )


def test_external_path_item_ref_is_rejected() -> None:
    doc = minimal_openapi(paths={"/p": {"$ref": "paths.yaml#/p"}})
    with pytest.raises(SpecError, match=r"^paths\./p\.\$ref: external reference"):
        import_spec(as_bytes(doc), validate=False)


def test_ref_like_data_in_examples_and_extensions_is_not_a_reference() -> None:
    schema = {
        "type": "object",
        "example": {"$ref": "https://not/a/ref"},
        "properties": {"default": {"$ref": "#/components/schemas/S"}, "example": {"type": "string"}},
        "x-meta": {"$ref": "elsewhere.json"},
    }
    responses = {"default": {"$ref": "#/components/responses/R"}}
    doc = minimal_openapi(
        paths={"/p": {"get": {"responses": responses}}},
        components={
            "schemas": {"S": schema},
            "responses": {"R": {"description": "r"}},
            "examples": {"E": {"value": {"$ref": "data only"}}},
        },
    )
    spec = import_spec(as_bytes(doc))
    assert spec.definition["components"]["schemas"]["S"]["x-meta"] == {"$ref": "elsewhere.json"}


def test_names_that_look_like_keywords_are_still_walked() -> None:
    # A property named "default" is a schema: an external $ref inside it is found.
    schema = {"type": "object", "properties": {"default": {"$ref": "other.json"}}}
    doc = minimal_openapi(components={"schemas": {"S": schema}})
    with pytest.raises(SpecError, match=r"^components\.schemas\.S\.properties\.default\.\$ref: external"):
        import_spec(as_bytes(doc))


def test_dangling_internal_ref_is_reported_with_its_location() -> None:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}
    doc = minimal_openapi(
        paths={"/p": {"get": {"responses": {"200": {"description": "ok", "content": content}}}}}
    )
    with pytest.raises(SpecError) as info:
        import_spec(as_bytes(doc))
    assert str(info.value) == (
        "paths./p.get.responses.200.content.application/json.schema.$ref: "
        "reference '#/components/schemas/Nope' does not resolve"
    )
    # Without validation the reference is kept as it is.
    spec = import_spec(as_bytes(doc), validate=False)
    assert spec.definition["paths"]["/p"]["get"]["responses"]["200"]["content"] == content


def test_escaped_pointer_tokens_resolve() -> None:
    doc = minimal_openapi(
        paths={"/a/b": {"get": {"responses": {"200": {"description": "ok"}}}},
               "/c": {"$ref": "#/paths/~1a~1b"}},
    )  # fmt: skip
    assert import_spec(as_bytes(doc)).definition["paths"]["/c"]["$ref"] == "#/paths/~1a~1b"


def test_yaml_alias_bomb_is_rejected() -> None:
    lines = [
        "openapi: 3.0.3",
        "info: {title: T, version: '1'}",
        "paths: {}",
        'x-a0: &a0 ["x","x","x","x","x","x","x","x"]',
    ]
    lines += [f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]" for i in range(1, 10)]
    with pytest.raises(SpecError, match="too many anchors/aliases"):
        import_spec("\n".join(lines).encode())


def test_invalid_text_is_reported() -> None:
    with pytest.raises(SpecError, match=r"^not valid JSON or YAML: line 1"):
        import_spec(b'{"openapi": ')
