"""The transformation configuration shared by requestTransformation and responseTransformation.

Wire shape of one configuration group (``requestTransformationConfiguration``; the response policy
also accepts ``responseTransformationConfiguration``)::

    commonTransformation:  addOrModify [{transformationVariable, transformationValue}], remove [...]
    methodTransformation:  method (CUSTOM keeps the request's; request side only)
    xsltTransformation:    xsltFile (the stylesheet text)
    payloadConversion:     xmlToJson | jsonToXml

The target of ``addOrModify``/``remove`` is a reference (:mod:`.expressions`): a header, query
parameter, path parameter or the resource path (request), the status code (response),
the whole payload, or a JSONPath / XPath / regex selection in the payload. A plain name without
``${}`` means a header. Values may hold ``${...}`` references; they are all resolved against the
message as it is before the edits of their group.

Order inside one group: XSLT, then the XML/JSON conversion, then the edits, then the method."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import parse_qsl, quote, urlencode

from pydantic import Field, field_validator, model_validator

from portico.policies.base import PolicyConfig
from portico.policies.payload import PayloadError
from portico.policies.payload.convert import json_to_xml, xml_to_json
from portico.policies.payload.documents import (
    compile_xslt,
    dump_json,
    dump_xml,
    has_declaration,
    json_remove,
    json_set,
    load_json,
    load_xml,
    run_xslt,
    xml_remove,
    xml_set,
    xslt_output_media,
)
from portico.policies.payload.expressions import MessageTemplate, Ref, Side, parse_ref, reference_only

if TYPE_CHECKING:
    from lxml import etree

    from portico.gateway.exchange import Exchange

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PARAM = re.compile(r"\{([^}/]+)\}")
_PAYLOAD_KINDS = ("payload", "jsonPath", "xpath", "regex")
_SETTABLE: dict[Side, tuple[str, ...]] = {
    "request": ("header", "query", "pathParam", "path", *_PAYLOAD_KINDS),
    # Not statusMessage: the gateway always sends the standard reason phrase for the status code.
    "response": ("header", "statusCode", *_PAYLOAD_KINDS),
}
_REMOVABLE: dict[Side, tuple[str, ...]] = {
    "request": ("header", "query", *_PAYLOAD_KINDS),
    "response": ("header", *_PAYLOAD_KINDS),
}
_JSON_TYPE, _XML_TYPE = b"application/json", b"application/xml"
# Above this size a body is transformed in a worker thread: XSLT and reparsing take long enough to stall the loop.
OFFLOAD_BYTES = 1024 * 1024


def target_of(text: str, side: Side, removing: bool) -> Ref:
    """The message part a transformationVariable / remove entry addresses; ValueError if unusable."""
    name = reference_only(text)
    if name is None:
        if "${" in text or not HEADER_NAME.match(text.strip()):
            raise ValueError(f"{text!r} is neither one ${{...}} reference nor a header name")
        return Ref(side, "header", text.strip().lower())
    ref = parse_ref(name)
    if ref is not None and side == "response" and ref.side == "request" and ref.kind == "header":
        ref = Ref("response", "header", ref.arg)  # the reference's own example names request headers here
    allowed = _REMOVABLE[side] if removing else _SETTABLE[side]
    if ref is None or ref.side != side or ref.kind not in allowed:
        verb = "removed" if removing else "set"
        raise ValueError(f"${{{name}}} cannot be {verb} by a {side} transformation")
    if ref.kind == "header" and not HEADER_NAME.match(ref.arg):
        raise ValueError(f"{ref.arg!r} is not a valid header name")
    return ref


class AddOrModify(PolicyConfig):
    transformationVariable: str = Field(description="What to set: a ${...} reference or a header name.")
    transformationValue: str = Field(default="", description="The new value; may contain ${...} variables.")


class CommonTransformation(PolicyConfig):
    addOrModify: list[AddOrModify] = Field(default_factory=list, description="Values to add or replace.")
    remove: list[str] = Field(default_factory=list, description="References (or header names) to remove.")


class MethodTransformation(PolicyConfig):
    method: Literal["CUSTOM", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] = Field(
        default="CUSTOM", description="The HTTP method sent to the native service; CUSTOM keeps the request's."
    )


class XsltTransformation(PolicyConfig):
    xsltFile: str = Field(description="The XSLT 1.0 stylesheet (its text). It may not read files or the network.")

    @field_validator("xsltFile")
    @classmethod
    def _compile(cls, value: str) -> str:
        compile_xslt(value)
        return value


class TransformationConfiguration(PolicyConfig):
    side: ClassVar[Side] = "request"

    commonTransformation: list[CommonTransformation] = Field(
        default_factory=list, description="Header, query, path, status and payload edits."
    )
    methodTransformation: MethodTransformation | None = Field(default=None, description="HTTP method change.")
    xsltTransformation: XsltTransformation | None = Field(default=None, description="XSLT applied to the payload.")
    payloadConversion: Literal["xmlToJson", "jsonToXml"] | None = Field(
        default=None, description="Convert the payload between XML and JSON (xmlToJSONConversion_keepString applies)."
    )

    @model_validator(mode="after")
    def _check_targets(self) -> TransformationConfiguration:
        for common in self.commonTransformation:
            for entry in common.addOrModify:
                ref = target_of(entry.transformationVariable, self.side, removing=False)
                MessageTemplate(entry.transformationValue)
                if ref.kind == "statusCode" and "${" not in entry.transformationValue:
                    _status(entry.transformationValue)
            for text in common.remove:
                target_of(text, self.side, removing=True)
        if self.side == "response" and self.methodTransformation and self.methodTransformation.method != "CUSTOM":
            raise ValueError("methodTransformation applies to requests only")
        return self


class ResponseTransformationConfiguration(TransformationConfiguration):
    side: ClassVar[Side] = "response"


def _status(text: str) -> int:
    try:
        status = int(text.strip())
    except ValueError:
        status = 0
    if not 100 <= status <= 599:
        raise PayloadError(f"{text!r} is not an HTTP status code")
    return status


@dataclass(frozen=True, slots=True)
class Edit:
    target: Ref
    value: MessageTemplate | None  # None: remove


class _Body:
    """A body being edited: parsed once as JSON or XML, serialized once at the end."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.doc: Any = None
        self.kind: str | None = None

    def json(self) -> Any:
        if self.kind != "json":
            self.flush()
            self.doc, self.kind = load_json(self.raw, empty={}), "json"
        return self.doc

    def xml(self) -> etree._ElementTree:
        if self.kind != "xml":
            self.flush()
            self.doc, self.kind = load_xml(self.raw), "xml"
        return self.doc

    def flush(self) -> bytes:
        if self.kind == "json":
            self.raw = b"" if self.doc is None else dump_json(self.doc)
        elif self.kind == "xml":
            self.raw = dump_xml(self.doc, has_declaration(self.raw))
        self.kind = None
        return self.raw


class Transformation:
    """One compiled configuration group; ``apply(ex)`` raises PayloadError on a message that does not fit."""

    def __init__(self, config: TransformationConfiguration) -> None:
        self.side: Side = config.side
        self.edits = tuple(
            [Edit(target_of(e.transformationVariable, self.side, False), MessageTemplate(e.transformationValue))
             for c in config.commonTransformation for e in c.addOrModify]
            + [Edit(target_of(r, self.side, True), None) for c in config.commonTransformation for r in c.remove]
        )
        method = config.methodTransformation.method if config.methodTransformation else "CUSTOM"
        self.method = None if method == "CUSTOM" else method
        source = config.xsltTransformation.xsltFile if config.xsltTransformation else None
        self.xslt = compile_xslt(source) if source else None
        self.xslt_media = xslt_output_media(source) if source else None
        self.conversion = config.payloadConversion
        self.templates = tuple(e.value for e in self.edits if e.value is not None)

    @property
    def needs_body(self) -> bool:
        return (
            self.xslt is not None
            or self.conversion is not None
            or any(e.target.kind in _PAYLOAD_KINDS for e in self.edits)
            or any(t.reads(self.side) for t in self.templates)
        )

    def apply(self, ex: Exchange) -> None:
        msg = _Message(ex, self.side)
        if self.xslt is not None:
            msg.set_body(run_xslt(self.xslt, msg.body()))
            if self.xslt_media:
                msg.set_header(b"content-type", self.xslt_media)
        if self.conversion == "xmlToJson":
            msg.set_body(xml_to_json(msg.body(), ex.snapshot.settings.xml_to_json_keep_string))
            msg.set_header(b"content-type", _JSON_TYPE)
        elif self.conversion == "jsonToXml":
            msg.set_body(json_to_xml(msg.body()))
            msg.set_header(b"content-type", _XML_TYPE)
        if self.edits:
            values = [(e.target, e.value.render(ex) if e.value is not None else None) for e in self.edits]
            body = _Body(msg.body()) if any(t.kind in _PAYLOAD_KINDS for t, _ in values) else None
            for target, value in values:
                _apply_edit(ex, msg, body, target, value)
            if body is not None:
                msg.set_body(body.flush())
        if self.method is not None:
            ex.method = self.method


class _Message:
    """The request or the response of an exchange, seen through one interface."""

    def __init__(self, ex: Exchange, side: Side) -> None:
        self.ex, self.side = ex, side

    def body(self) -> bytes:
        if self.side == "request":
            return self.ex.body or b""
        return self.ex.response.body if self.ex.response else b""

    def set_body(self, body: bytes) -> None:
        if self.side == "request":
            self.ex.body = body
        elif self.ex.response is not None:
            self.ex.response.body = body

    def set_header(self, name: bytes, value: bytes) -> None:
        if self.side == "request":
            self.ex.set_header(name, value)
        elif self.ex.response is not None:
            self.ex.response.set_header(name, value)

    def remove_header(self, name: bytes) -> None:
        if self.side == "request":
            self.ex.remove_header(name)
        elif self.ex.response is not None:
            self.ex.response.remove_header(name)


def header_value(text: str) -> bytes:
    """A rendered value as a header value: line breaks would split the header, so they become spaces."""
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8")


def _apply_edit(ex: Exchange, msg: _Message, body: _Body | None, target: Ref, value: str | None) -> None:
    kind = target.kind
    if kind == "header":
        name = target.arg.encode("latin-1")
        msg.remove_header(name) if value is None else msg.set_header(name, header_value(value))
    elif kind == "query":
        pairs = [(k, v) for k, v in parse_qsl(ex.query, keep_blank_values=True) if k != target.arg]
        if value is not None:
            pairs.append((target.arg, value))
        ex.query = urlencode(pairs, quote_via=quote)
    elif kind == "pathParam":
        _set_path_param(ex, target.arg, value or "")
    elif kind == "path":
        ex.resource_path = "/" + (value or "").lstrip("/")
    elif kind == "statusCode":
        assert ex.response is not None and value is not None
        ex.response.status = _status(value)
    else:
        assert body is not None
        _edit_payload(body, target, value)


def _edit_payload(body: _Body, target: Ref, value: str | None) -> None:
    kind = target.kind
    if kind == "payload":
        body.flush()
        body.raw = (value or "").encode("utf-8")
    elif kind == "jsonPath":
        doc = body.json()
        body.doc = json_remove(target.compiled, doc) if value is None else json_set(target.compiled, doc, value)
    elif kind == "xpath":
        tree = body.xml()
        xml_remove(target.compiled, tree) if value is None else xml_set(target.compiled, tree, value)
    else:  # regex over the text
        text = body.flush().decode("utf-8", "replace")
        body.raw = target.compiled.sub((value or "").replace("\\", "\\\\"), text).encode("utf-8")


def _set_path_param(ex: Exchange, name: str, value: str) -> None:
    """Set a path parameter and re-render the resource-path segments that hold it."""
    ex.path_params = {**ex.path_params, name: value}
    template = [s for s in ex.resource.split("/") if s]
    leading = ex.resource_path.startswith("/")
    segments = ex.resource_path.strip("/").split("/")
    for i, seg in enumerate(template):
        if i < len(segments) and "{" + name + "}" in seg:
            segments[i] = _PARAM.sub(lambda m: quote(ex.path_params.get(m.group(1), ""), safe=""), seg)
    trailing = ex.resource_path.endswith("/") and len(ex.resource_path) > 1
    ex.resource_path = ("/" if leading else "") + "/".join(segments) + ("/" if trailing else "")
