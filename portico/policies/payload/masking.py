"""Data masking: JSONPath, XPath and regex criteria that mask or remove parts of a payload.

Wire shape (Postman "Create Data Masking", the same for request/response/fault)::

    {"templateKey": "jpathMasking", "parameters": [{"templateKey": "maskingCriteria", "parameters": [
        {"templateKey": "action", "values": ["$.accountNumber"]},       # or ${request.payload.accountNumber}
        {"templateKey": "maskingType", "values": ["mask"]},             # mask | remove
        {"templateKey": "maskValue", "values": ["********"]}]}]}
    xpathMasking (action: an XPath), regexMasking (action: a regular expression),
    sameForTransactionalLogging (true: logged payloads are masked too), applyForPayload (true: the
    payload itself is masked; false: only what is logged)

JSONPath criteria apply to JSON payloads, XPath criteria to XML payloads (by content type, else
sniffed), regex criteria to the payload text of any kind, after the other two.

Logging: :func:`mask_for_log` ``(ex, payload, direction) -> bytes`` applies the masking actions
of the exchange's plan that have ``sameForTransactionalLogging`` to a payload about to be logged
(``direction``: "request", "response" or "fault"). logInvocation and other LMT policies call it
before storing a payload. A payload the JSONPath/XPath criteria cannot be applied to (not JSON,
not XML) is withheld from the log rather than logged unmasked."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from jsonpath_ng import JSONPath
from pydantic import Field, field_validator, model_validator

from portico.policies.base import PolicyConfig, PolicyHandler
from portico.policies.payload import PayloadError
from portico.policies.payload.documents import (
    compile_jsonpath,
    compile_xpath,
    dump_json,
    dump_xml,
    has_declaration,
    json_remove,
    json_set,
    kind_of,
    load_json,
    load_xml,
    xml_remove,
    xml_set,
)
from portico.policies.payload.expressions import parse_ref, reference_only
from portico.policies.payload.user_regex import compile_user_regex, user_sub

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

log = logging.getLogger("portico.policies")
Direction = Literal["request", "response", "fault"]
WITHHELD = b"[payload withheld: data masking could not be applied]"


def jsonpath_of(action: str) -> str:
    """``$.a``, ``${request.payload.a}`` or ``${...payload.jsonPath[$.a]}`` as a JSONPath."""
    name = reference_only(action)
    if name is None:
        return action.strip()
    ref = parse_ref(name)
    if ref is None or ref.kind != "jsonPath":
        raise ValueError(f"{action!r} does not address a JSON payload")
    return ref.arg


class MaskingCriteria(PolicyConfig):
    action: str = Field(description="What to mask: a JSONPath, an XPath or a regular expression, per group.")
    maskingType: Literal["mask", "remove"] = Field(default="mask", description="Replace the value or remove it.")
    maskValue: str = Field(default="********", description="The replacement when maskingType is mask.")


class MaskingGroup(PolicyConfig):
    maskingCriteria: list[MaskingCriteria] = Field(min_length=1, description="The masking criteria.")


class DataMaskingConfig(PolicyConfig):
    jpathMasking: list[MaskingGroup] = Field(default_factory=list, description="JSONPath criteria (JSON payloads).")
    xpathMasking: list[MaskingGroup] = Field(default_factory=list, description="XPath criteria (XML payloads).")
    regexMasking: list[MaskingGroup] = Field(default_factory=list, description="Regex criteria (payload text).")
    sameForTransactionalLogging: bool = Field(default=True, description="Mask logged payloads the same way.")
    applyForPayload: bool = Field(default=True, description="Mask the payload itself (false: only logged copies).")

    @field_validator("jpathMasking")
    @classmethod
    def _check_jpath(cls, groups: list[MaskingGroup]) -> list[MaskingGroup]:
        for group in groups:
            for c in group.maskingCriteria:
                compile_jsonpath(jsonpath_of(c.action))
        return groups

    @field_validator("xpathMasking")
    @classmethod
    def _check_xpath(cls, groups: list[MaskingGroup]) -> list[MaskingGroup]:
        for group in groups:
            for c in group.maskingCriteria:
                compile_xpath(c.action)
        return groups

    @field_validator("regexMasking")
    @classmethod
    def _check_regex(cls, groups: list[MaskingGroup]) -> list[MaskingGroup]:
        for group in groups:
            for c in group.maskingCriteria:
                compile_user_regex(c.action)
        return groups

    @model_validator(mode="after")
    def _something(self) -> DataMaskingConfig:
        if not (self.jpathMasking or self.xpathMasking or self.regexMasking):
            raise ValueError("jpathMasking, xpathMasking or regexMasking: at least one masking criterion is required")
        return self


def _criteria(groups: list[MaskingGroup]) -> list[MaskingCriteria]:
    return [c for g in groups for c in g.maskingCriteria]


class Masker:
    """Compiled criteria; ``apply`` raises PayloadError when a JSON/XML criterion meets a body it cannot parse."""

    def __init__(self, config: DataMaskingConfig) -> None:
        self.json = tuple((compile_jsonpath(jsonpath_of(c.action)), c) for c in _criteria(config.jpathMasking))
        self.xml = tuple((compile_xpath(c.action), c) for c in _criteria(config.xpathMasking))
        self.regex = tuple((compile_user_regex(c.action), c) for c in _criteria(config.regexMasking))

    def apply(self, body: bytes, content_type: bytes | None) -> bytes:
        if not body:
            return body
        kind = kind_of(content_type, body)
        if kind == "json" and self.json:
            doc = load_json(body)
            for path, c in self.json:
                doc = json_remove(path, doc) if c.maskingType == "remove" else _mask_json(path, doc, c.maskValue)
            body = b"" if doc is None else dump_json(doc)
        elif kind == "xml" and self.xml:
            tree = load_xml(body)
            for xpath, c in self.xml:
                xml_remove(xpath, tree) if c.maskingType == "remove" else xml_set(xpath, tree, c.maskValue)
            body = dump_xml(tree, has_declaration(body))
        if self.regex:
            text = body.decode("utf-8", "replace")
            for pattern, c in self.regex:
                replacement = "" if c.maskingType == "remove" else c.maskValue
                text = user_sub(pattern, replacement.replace("\\", "\\\\"), text)  # the mask is literal text
            body = text.encode("utf-8")
        return body


def _mask_json(path: JSONPath, doc: Any, value: str) -> Any:
    """Mask only what exists: masking never creates a field."""
    return json_set(path, doc, value) if path.find(doc) else doc


class DataMaskingHandler(PolicyHandler):
    """Base of requestDataMasking, responseDataMasking and faultDataMasking."""

    direction: ClassVar[Direction]
    Config = DataMaskingConfig

    def __init__(self, config: DataMaskingConfig) -> None:
        super().__init__(config)
        self.masker = Masker(config)
        self.apply_to_payload = config.applyForPayload
        self.mask_logs = config.sameForTransactionalLogging


def _content_type(ex: Exchange, direction: Direction) -> bytes | None:
    if direction == "request":
        return ex.header(b"content-type")
    if direction == "response":
        return ex.response.header(b"content-type") if ex.response else None
    native = ex.fault.native if ex.fault else None
    return native.header(b"content-type") if native else None


def mask_for_log(ex: Exchange, payload: bytes, direction: Direction) -> bytes:
    """``payload`` masked by every data-masking action of ``ex``'s plan for ``direction`` that has
    ``sameForTransactionalLogging``; unchanged when there is none. Never raises: a payload that
    cannot be masked is replaced by a placeholder."""
    phase = {"request": ex.plan.request, "response": ex.plan.response, "fault": ex.plan.fault}[direction]
    content_type = _content_type(ex, direction)
    for handler in phase:
        if isinstance(handler, DataMaskingHandler) and handler.direction == direction and handler.mask_logs:
            try:
                payload = handler.masker.apply(payload, content_type)
            except PayloadError as exc:
                log.warning("%s: withholding a logged payload that cannot be masked: %s", handler.template_key, exc)
                return WITHHELD
    return payload
