"""Run an operation's validators against one request or one buffered response.

Every failure is a 400 :class:`Violation` whose message names the failing field: a parameter
(``query parameter 'limit'``), a body field as a JSON path (``request body field '$.tags[0]'``)
or the content type."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from portico.policies._spec.compile import BodySchema, Operation, Parameter
from portico.policies._spec.media import BodyError, decode_json, decode_xml, find_declared, kind_of, media_type
from portico.policies.base import Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import BufferedResponse, Exchange

SCHEMA_FAILED = "SCHEMA_VALIDATION_FAILED"
PARAMETER_FAILED = "PARAMETER_VALIDATION_FAILED"
CONTENT_TYPE_FAILED = "CONTENT_TYPE_NOT_ALLOWED"
HEADER_FAILED = "HEADER_VALIDATION_FAILED"
PREFIX = "API specification validation failed: "


@dataclass(frozen=True, slots=True)
class Enabled:
    """Which checks a policy turns on."""

    body: bool = True
    query: bool = False
    path: bool = False
    headers: bool = False
    cookies: bool = False
    content_types: bool = False


def _fail(key: str, message: str) -> Violation:
    return Violation(400, key, PREFIX + message)


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _schema_error(validator: Validator, value: Any, what: str) -> str | None:
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return f"{what} field '{_json_path(error.absolute_path)}': {error.message}"


# -- parameters ----------------------------------------------------------------------------------

_BOOLEANS = {"true": True, "false": False}


def _coerce(kind: str, text: str) -> Any:
    """The text of a parameter as the value its schema type expects (ValueError when it is not)."""
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        if text.lower() not in _BOOLEANS:
            raise ValueError(text)
        return _BOOLEANS[text.lower()]
    return text


def _value_of(p: Parameter, raw: list[str]) -> Any:
    if p.kind == "array":
        items = raw if len(raw) > 1 else [v for v in raw[0].split(",") if v != ""]
        return [_coerce(p.item_kind, v) for v in items]
    return _coerce(p.kind, raw[0])


def _raw_values(p: Parameter, ex: Exchange, query: dict[str, list[str]], cookies: dict[str, str]) -> list[str] | None:
    if p.location == "query":
        return query.get(p.name)
    if p.location == "path":
        value = ex.path_params.get(p.lookup)
        return [unquote(value)] if value is not None else None
    if p.location == "header":
        values = [v.decode("latin-1").strip() for n, v in ex.request.headers if n == p.lookup.encode("latin-1")]
        return values or None
    cookie = cookies.get(p.name)
    return [cookie] if cookie is not None else None


def _cookies(ex: Exchange) -> dict[str, str]:
    raw = ex.request.header(b"cookie")
    out: dict[str, str] = {}
    for part in (raw or b"").decode("latin-1").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


def check_parameters(op: Operation, ex: Exchange, enabled: Enabled) -> Violation | None:
    wanted = {"query": enabled.query, "path": enabled.path, "header": enabled.headers, "cookie": enabled.cookies}
    query = parse_qs(ex.request.query, keep_blank_values=True) if enabled.query and ex.request.query else {}
    cookies = _cookies(ex) if enabled.cookies else {}
    for p in op.parameters:
        if not wanted.get(p.location):
            continue
        what = f"{p.location} parameter '{p.name}'"
        raw = _raw_values(p, ex, query, cookies)
        if raw is None:
            if p.required:
                return _fail(PARAMETER_FAILED, f"{what} is required")
            continue
        try:
            value = _value_of(p, raw)
        except ValueError:
            expected = p.item_kind if p.kind == "array" else p.kind
            return _fail(PARAMETER_FAILED, f"{what}: {raw[0]!r} is not a valid {expected}")
        if p.validator is not None:
            error = best_match(p.validator.iter_errors(value))
            if error is not None:
                return _fail(PARAMETER_FAILED, f"{what}: {error.message}")
    return None


# -- bodies --------------------------------------------------------------------------------------


def check_body(
    declared: dict[str, BodySchema],
    content_type: bytes | None,
    body: bytes,
    custom: dict[str, str],
    enabled: Enabled,
    what: str,
) -> Violation | None:
    """``what`` is ``request body`` or ``response body``. A content type the spec does not
    declare (nor maps through the custom content types) is refused only when content types
    are checked; otherwise its body is not validated, as the reference does."""
    if not declared or (not body and what == "response body"):
        return None
    mt = media_type(content_type)
    key = find_declared(mt, declared, custom) if mt else None
    if key is None:
        if enabled.content_types and (body or mt):
            shown = mt or "(none)"
            return _fail(CONTENT_TYPE_FAILED, f"{what} content type '{shown}' is not one of {sorted(declared)}")
        return None
    if not enabled.body:
        return None
    schema = declared[key]
    kind = kind_of(custom.get(mt, mt) if key in ("*/*",) or key.endswith("/*") else key)
    try:
        if kind == "json" and schema.validator is not None:
            message = _schema_error(schema.validator, decode_json(body), what)
            return _fail(SCHEMA_FAILED, message) if message else None
        if kind == "xml":
            return _check_xml(schema, body, what)
    except BodyError as exc:
        return _fail(SCHEMA_FAILED, f"{what}: {exc}")
    return None


def _check_xml(schema: BodySchema, body: bytes, what: str) -> Violation | None:
    document = decode_xml(body)
    if schema.xsd is None or schema.xsd.validate(document):
        return None
    last = schema.xsd.error_log.last_error
    if last is None:
        return _fail(SCHEMA_FAILED, f"{what} does not match the XML schema")
    where = f" element '{last.path}'" if last.path else ""
    return _fail(SCHEMA_FAILED, f"{what}{where} (line {last.line}): {last.message}")


def check_request(op: Operation, ex: Exchange, custom: dict[str, str], enabled: Enabled) -> Violation | None:
    violation = check_parameters(op, ex, enabled)
    if violation is not None:
        return violation
    body = ex.body or b""
    if not body and op.body_required and enabled.body:
        return _fail(SCHEMA_FAILED, "request body is required")
    if not body and not op.request:
        return None
    return check_body(op.request, ex.request.header(b"content-type"), body, custom, enabled, "request body")


def response_schemas(op: Operation, status: int) -> dict[str, BodySchema]:
    code = str(status)
    for key in (code, code[0] + "XX", "DEFAULT"):
        found = op.responses.get(key)
        if found is not None:
            return found
    return {}


def check_response(
    op: Operation, response: BufferedResponse, custom: dict[str, str], enabled: Enabled
) -> Violation | None:
    declared = response_schemas(op, response.status)
    return check_body(declared, response.header(b"content-type"), response.body, custom, enabled, "response body")
