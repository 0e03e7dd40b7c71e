"""Import an OpenAPI 3.0 / 3.1 or Swagger 2.0 document into Portico's API model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from jsonschema.exceptions import ValidationError
from openapi_spec_validator import (
    OpenAPIV2SpecValidator,
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
)

from portico.specs.load import SpecError, load_document
from portico.specs.normalize import SourceFormat, native_endpoints, normalize
from portico.specs.shape import check_shape

_VALIDATORS = {
    "2.0": OpenAPIV2SpecValidator,
    "3.0": OpenAPIV30SpecValidator,
    "3.1": OpenAPIV31SpecValidator,
}

_UNSUPPORTED = "unsupported specification: expected 'openapi: 3.x' or 'swagger: 2.0'"

# Keys whose values are data, not specification: a "$ref" inside an example is just text.
_LITERAL_KEYS = frozenset({"example", "default", "enum", "const"})

# Keys whose value is a map from user-chosen names (property names, status codes, media
# types...) to objects: inside them "default" or "example" is a name, not a keyword.
_NAME_MAPS = frozenset(
    {
        "properties", "patternProperties", "definitions", "$defs", "schemas", "parameters",
        "responses", "requestBodies", "headers", "securitySchemes", "securityDefinitions",
        "links", "callbacks", "paths", "webhooks", "pathItems", "content", "encoding",
        "variables", "examples", "scopes", "mapping", "dependentSchemas",
    }
)  # fmt: skip

_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class ImportedSpec:
    """An imported specification: the stored model plus what the API record needs.

    ``native_endpoints`` are the base URLs of the implementation, in document order, with
    server variables replaced by their defaults. Relative ones (an OpenAPI server ``/v1``,
    a Swagger document without ``host``) are kept and also listed in
    ``relative_endpoints``: the caller must ask for, or combine them with, a real host.
    """

    definition: dict[str, Any]
    native_endpoints: list[str]
    title: str
    version: str
    description: str
    source_format: SourceFormat
    spec_version: str
    source_text: str
    relative_endpoints: list[str] = field(default_factory=list)


def import_spec(raw: bytes, declared_type: str | None = None, validate: bool = True) -> ImportedSpec:
    """Parse, check and normalize an uploaded or fetched specification.

    ``declared_type`` is the ``type`` the user gave ("openapi", "swagger" or None to
    detect). ``validate`` runs the full OpenAPI/Swagger schema validation (extended
    setting ``openAPIImporterValidation``); without it only the structure Portico relies
    on is checked. External ``$ref``s are always rejected: resolving them would make the
    gateway fetch arbitrary URLs or files. Raises SpecError on any problem.
    """
    doc, text = load_document(raw)
    source_format, spec_version = detect_format(doc)
    _check_declared_type(declared_type, source_format, spec_version)
    # Store the version as text: YAML reads an unquoted `swagger: 2.0` as a float.
    doc[source_format] = spec_version
    _check_structure(doc, spec_version)
    check_shape(doc, source_format)
    refs = list(_iter_refs(doc, ()))
    _reject_external_refs(refs)
    if validate:
        _check_internal_refs(doc, refs)
        _run_validator(doc, spec_version)
    definition = normalize(doc, source_format, spec_version)
    endpoints, relative = native_endpoints(definition)
    info = doc["info"]
    return ImportedSpec(
        definition=definition,
        native_endpoints=endpoints,
        title=str(info["title"]),
        version=_text(info.get("version")),
        description=_text(info.get("description")),
        source_format=source_format,
        spec_version=spec_version,
        source_text=text,
        relative_endpoints=relative,
    )


def detect_format(doc: dict[str, Any]) -> tuple[SourceFormat, str]:
    """("openapi" | "swagger", the version string) of a parsed document."""
    has_openapi, has_swagger = "openapi" in doc, "swagger" in doc
    if has_openapi and has_swagger:
        raise SpecError("unsupported specification: the document has both 'openapi' and 'swagger' fields")
    if has_swagger:
        version = _version_text(doc["swagger"])
        if version != "2.0":
            raise SpecError(f"unsupported specification: swagger version {doc['swagger']!r}; expected '2.0'")
        return "swagger", version
    if has_openapi:
        version = _version_text(doc["openapi"])
        if not version.startswith(("3.0", "3.1")):
            raise SpecError(
                f"unsupported specification: openapi version {doc['openapi']!r}; expected 3.0.x or 3.1.x"
            )
        return "openapi", version
    raise SpecError(_UNSUPPORTED)


def _version_text(value: Any) -> str:
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def _check_declared_type(declared: str | None, source_format: SourceFormat, spec_version: str) -> None:
    wanted = (declared or "").strip().lower()
    if not wanted:
        return
    if wanted not in ("openapi", "swagger"):
        raise SpecError(f"type: {declared!r} is not an OpenAPI type; expected 'openapi' or 'swagger'")
    if wanted != source_format:
        found = f"OpenAPI {spec_version}" if source_format == "openapi" else f"Swagger {spec_version}"
        raise SpecError(
            f"type: {declared!r} does not match the document, which is {found}; use type {source_format!r}"
        )


def _check_structure(doc: dict[str, Any], spec_version: str) -> None:
    """What Portico itself needs, independent of full schema validation."""
    info = doc.get("info")
    if not isinstance(info, dict):
        raise SpecError("info: required mapping missing")
    if not isinstance(info.get("title"), str) or not info["title"].strip():
        raise SpecError("info.title: required string missing")
    paths = doc.get("paths")
    # OpenAPI 3.1 lets a document describe only webhooks or components.
    if paths is None and spec_version.startswith("3.1"):
        return
    if not isinstance(paths, dict):
        raise SpecError("paths: required mapping missing")
    servers = doc.get("servers")
    if servers is not None and not isinstance(servers, list):
        raise SpecError("servers: expected a list")


def _iter_refs(node: Any, where: tuple[str, ...], context: str = "object") -> Iterator[tuple[str, str]]:
    """(location, $ref value) of every reference in the document.

    ``context`` says what the keys of ``node`` are: "object" (keywords), "names" (a map
    of user-chosen names) or "example" (an Example Object, whose ``value`` is data).
    """
    if isinstance(node, list):
        for index, child in enumerate(node):
            yield from _iter_refs(child, (*where, f"[{index}]"))
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        path = (*where, key)
        if context == "names":
            yield from _iter_refs(value, path, "example" if where and where[-1] == "examples" else "object")
        elif key == "$ref" and isinstance(value, str):
            yield _location(path), value
        elif not _is_data(key, value, context):
            yield from _iter_refs(value, path, "names" if key in _NAME_MAPS else "object")


def _is_data(key: str, value: Any, context: str) -> bool:
    if key in _LITERAL_KEYS or key.startswith("x-"):
        return True
    if context == "example" and key == "value":
        return True
    # JSON Schema `examples` (OpenAPI 3.1) is a list of values, not a map of Example Objects.
    return key == "examples" and isinstance(value, list)


def _location(parts: Iterable[str]) -> str:
    text = ""
    for part in parts:
        text += part if part.startswith("[") or not text else f".{part}"
    return text


def _reject_external_refs(refs: list[tuple[str, str]]) -> None:
    for where, ref in refs:
        if not ref.startswith("#"):
            raise SpecError(
                f"{where}: external reference {_short(ref)!r} is not supported; "
                "bundle the specification into a single document"
            )


def _check_internal_refs(doc: dict[str, Any], refs: list[tuple[str, str]]) -> None:
    """Every ``#/...`` reference must point into the document (the validator would crash)."""
    for where, ref in refs:
        # "#name" fragments are JSON Schema anchors ($anchor), not pointers; let them be.
        if ref == "#" or not ref.startswith("#/"):
            continue
        target: Any = doc
        for token in ref[2:].split("/"):
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                raise SpecError(f"{where}: reference {_short(ref)!r} does not resolve")


def _run_validator(doc: dict[str, Any], spec_version: str) -> None:
    validator = _VALIDATORS[spec_version[:3]](doc)
    try:
        error = next(iter(validator.iter_errors()), None)
    except SpecError:
        raise
    except Exception as exc:
        # The validator raises (rather than yields) when it cannot follow a structure,
        # e.g. a reference into a non-object; any such failure is the document's fault.
        raise SpecError(f"invalid specification: {_short(str(exc))}") from exc
    if error is not None:
        raise SpecError(_describe(error))


def _describe(error: ValidationError) -> str:
    error = _closest(error)
    where = _location(f"[{p}]" if isinstance(p, int) else str(p) for p in error.absolute_path)
    if error.validator in ("oneOf", "anyOf"):
        # The stock message repeats the whole offending object; the location says enough.
        message = "does not match any of the allowed forms"
    else:
        message = _short(error.message)
    return f"{where}: {message}" if where else message


def _closest(error: ValidationError) -> ValidationError:
    """The most specific cause of a oneOf/anyOf failure.

    The OpenAPI schemas use oneOf for "a Reference or a Parameter" and "a body or a query
    parameter". Branches that fail only because the object is another kind (a required
    ``$ref``, a single-valued enum such as ``in: body``) are not what the user meant;
    the first other branch is, and within it the deepest error.
    """
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for child in error.context:
            branches.setdefault(child.relative_schema_path[0], []).append(child)
        plausible = [errors for errors in branches.values() if not any(map(_other_kind, errors))]
        if not plausible:
            break
        error = max(plausible[0], key=lambda e: len(e.absolute_path))
    return error


def _other_kind(error: ValidationError) -> bool:
    if error.validator == "required":
        return "$ref" in error.validator_value
    if error.validator == "enum":
        return isinstance(error.validator_value, list) and len(error.validator_value) == 1
    return error.validator in ("const", "additionalProperties")


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def _text(value: Any) -> str:
    return "" if value is None else str(value)
