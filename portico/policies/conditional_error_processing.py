"""``conditionalErrorProcessing`` (responseFaultProcessing): custom error responses.

When a call fails (a policy violation, a gateway failure, or a native fault the gateway does not
pass through) and one of the ``faultCriteria`` holds (any; none configured: every fault), the
error response is replaced: with the native fault as it is when ``sendNativeProviderFault`` is
true and there is one, else with a ``failureMessage`` chosen by the caller's ``Accept`` header
(json/xml/text), else the one marked ``useAsDefault``, else the first. Templates may use
``${...}`` variables (``${apiName}``, ``${request.headers.X}``, ...) and the error-template
variables ``$ERROR_MESSAGE``, ``$SERVICE``, ``$OPERATION``, ``$CLIENT_IP``, ``$USER``,
``$CONSUMER_APPLICATION``, ``$TIME``, ``$DATE``; the status code stays the fault's.

Criteria: ``statusCodeCriteria`` (``401``, ``4xx``, ``500-599``), ``headerCriteria`` (a request
header, optionally with a value), ``xpathCriteria`` (payload identifiers over the native fault's
body: ``xpath``, ``jsonPath`` or ``regex`` expressions, optionally compared with ``value``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import orjson
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as jsonpath
from lxml import etree
from pydantic import Field, field_validator, model_validator

from portico.gateway.errors import render_template
from portico.gateway.variables import Template
from portico.policies.base import PolicyConfig, PolicyHandler

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange, Fault

_STATUS = re.compile(r"^(?:[1-5]\d\d|[1-5][xX][xX]|[1-5]\d\d-[1-5]\d\d)$")
_MEDIA = {"json": b"application/json", "xml": b"application/xml", "text": b"text/plain"}
_ACCEPT_TOKEN = {"json": "json", "xml": "xml", "text": "text/plain"}
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class UnsupportedStepConfig(PolicyConfig):
    invokeESBParam: list[dict[str, Any]] = Field(default_factory=list, description="Not supported by Portico.")

    @model_validator(mode="after")
    def _refuse(self) -> UnsupportedStepConfig:
        if self.invokeESBParam:
            raise ValueError("invoking webMethods IS services is not supported")
        return self


class FailureMessageConfig(PolicyConfig):
    contentType: Literal["json", "xml", "text"] = Field(default="json", description="Content type of the message.")
    errortemplate: str = Field(max_length=100_000, description="The response body; may hold variables.")
    useAsDefault: bool = Field(default=False, description="Send this message when no content type fits.")


class CustomFailureMessagesConfig(PolicyConfig):
    sendNativeProviderFault: bool = Field(
        default=False, description="Send the native service's fault as it is, when there is one.")
    failureMessage: list[FailureMessageConfig] = Field(default_factory=list, description="The custom messages.")


class StatusCodeCriteriaConfig(PolicyConfig):
    statusCode: list[str] = Field(min_length=1, description="Status codes: 401, 4xx or 500-599.")

    @field_validator("statusCode", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not _STATUS.match(str(v).strip()):
                raise ValueError(f"{v!r} is not a status code, class (4xx) or range (500-599)")
        return [str(v).strip() for v in values]


class HeaderCriteriaConfig(PolicyConfig):
    headerName: str = Field(min_length=1, description="A request header that must be present.")
    headerValue: str | None = Field(default=None, description="Its value (case-insensitive); any when absent.")


class PayloadIdentifierConfig(PolicyConfig):
    expressionType: Literal["xpath", "jsonPath", "regex"] = Field(description="The expression language.")
    expression: str = Field(min_length=1, description="Expression over the native fault's body.")
    value: str | None = Field(default=None, description="The value it must yield; any match when absent.")

    @model_validator(mode="after")
    def _compiles(self) -> PayloadIdentifierConfig:
        _compile_expression(self)
        return self


class XpathCriteriaConfig(PolicyConfig):
    payloadIdentifier: list[PayloadIdentifierConfig] = Field(min_length=1, description="Payload conditions (any).")


class FaultCriteriaConfig(PolicyConfig):
    statusCodeCriteria: StatusCodeCriteriaConfig | None = Field(default=None, description="Status condition.")
    headerCriteria: HeaderCriteriaConfig | None = Field(default=None, description="Request header condition.")
    xpathCriteria: XpathCriteriaConfig | None = Field(default=None, description="Fault payload condition.")


class ConditionalErrorProcessingConfig(PolicyConfig):
    preProcessingSteps: UnsupportedStepConfig | None = Field(default=None, description="Not supported.")
    postProcessingSteps: UnsupportedStepConfig | None = Field(default=None, description="Not supported.")
    customFailureMessages: CustomFailureMessagesConfig = Field(description="What to send instead of the error.")
    faultCriteria: list[FaultCriteriaConfig] = Field(
        default_factory=list, description="When to apply (any holds); none: on every fault.")

    @model_validator(mode="after")
    def _has_answer(self) -> ConditionalErrorProcessingConfig:
        messages = self.customFailureMessages
        if not messages.failureMessage and not messages.sendNativeProviderFault:
            raise ValueError("customFailureMessages needs a failureMessage or sendNativeProviderFault")
        return self


def _compile_expression(p: PayloadIdentifierConfig) -> Any:
    try:
        if p.expressionType == "xpath":
            return etree.XPath(p.expression)
        if p.expressionType == "jsonPath":
            return jsonpath(p.expression)
        return re.compile(p.expression)
    except (etree.XPathSyntaxError, JsonPathParserError, re.error, Exception) as exc:  # jsonpath raises others too
        raise ValueError(f"invalid {p.expressionType} expression {p.expression!r}: {exc}") from None


def _status_matcher(code: str) -> tuple[int, int]:
    if "-" in code:
        low, high = code.split("-")
        return int(low), int(high)
    if code[1:].lower() == "xx":
        return int(code[0]) * 100, int(code[0]) * 100 + 99
    return int(code), int(code)


class _Criterion:
    """One faultCriteria entry compiled: every part it names must hold."""

    def __init__(self, c: FaultCriteriaConfig) -> None:
        codes = c.statusCodeCriteria.statusCode if c.statusCodeCriteria else []
        self.ranges = tuple(_status_matcher(code) for code in codes)
        self.header = (c.headerCriteria.headerName.lower().encode("latin-1"),
                       (c.headerCriteria.headerValue or "").strip().lower()) if c.headerCriteria else None
        ids = c.xpathCriteria.payloadIdentifier if c.xpathCriteria else []
        self.payload = tuple((p.expressionType, _compile_expression(p), p.value) for p in ids)

    def holds(self, ex: Exchange, fault: Fault) -> bool:
        if self.ranges and not any(low <= fault.status <= high for low, high in self.ranges):
            return False
        if self.header is not None:
            value = ex.request.header(self.header[0])
            if value is None:
                return False
            text = value.decode("latin-1").strip().lower()
            if self.header[1] and self.header[1] not in (text, text.split(";", 1)[0].strip()):
                return False
        return not self.payload or _payload_holds(self.payload, fault)


def _payload_holds(conditions: tuple[tuple[str, Any, str | None], ...], fault: Fault) -> bool:
    body = fault.native.body if fault.native is not None else b""
    if not body:
        return False
    for kind, compiled, expected in conditions:
        try:
            found = _evaluate(kind, compiled, body)
        except (ValueError, etree.XMLSyntaxError, orjson.JSONDecodeError):
            continue  # not that kind of payload: this condition does not hold
        if found and (expected is None or expected in found):
            return True
    return False


def _evaluate(kind: str, compiled: Any, body: bytes) -> list[str]:
    if kind == "xpath":
        result = compiled(etree.fromstring(body, _XML_PARSER))
        items = result if isinstance(result, list) else [result]
        return [i.text or "" if isinstance(i, etree._Element) else str(i) for i in items]
    if kind == "jsonPath":
        return [m.value if isinstance(m.value, str) else orjson.dumps(m.value).decode()
                for m in compiled.find(orjson.loads(body))]
    m = compiled.search(body.decode("utf-8", "replace"))
    return [] if m is None else [m.group(1) if m.groups() else m.group(0)]


class ConditionalErrorProcessing(PolicyHandler):
    template_key = "conditionalErrorProcessing"
    stage = "responseFaultProcessing"
    title = "Conditional Error Processing"
    Config = ConditionalErrorProcessingConfig

    def __init__(self, config: ConditionalErrorProcessingConfig) -> None:
        super().__init__(config)
        self._criteria = tuple(_Criterion(c) for c in config.faultCriteria)
        messages = config.customFailureMessages
        self._native = messages.sendNativeProviderFault
        self._messages = tuple((m.contentType, Template(m.errortemplate)) for m in messages.failureMessage)
        defaults = [i for i, m in enumerate(messages.failureMessage) if m.useAsDefault]
        self._default = defaults[0] if defaults else 0

    def on_fault(self, ex: Exchange, fault: Fault) -> None:
        if self._criteria and not any(c.holds(ex, fault) for c in self._criteria):
            return None
        if self._native and fault.native is not None:
            fault.status = fault.native.status
            kept = fault.native.header(b"content-type")
            fault.headers = [(b"content-type", kept)] if kept else []
            fault.body = fault.native.body
            return None
        if not self._messages:
            return None
        kind, template = self._choose(ex.request.header(b"accept"))
        text = render_template(
            template.render(ex), fault.message, service=ex.api.name, operation=ex.resource or ex.resource_path,
            client_ip=ex.client_ip, user=ex.user or "", application=ex.application.name if ex.application else "",
        )
        fault.headers = [h for h in fault.headers if h[0] != b"content-type"]
        fault.headers.append((b"content-type", _MEDIA[kind]))
        fault.body = text.encode()
        return None

    def _choose(self, accept: bytes | None) -> tuple[str, Template]:
        wanted = (accept or b"").decode("latin-1").lower()
        for kind, template in self._messages:
            if _ACCEPT_TOKEN[kind] in wanted:
                return kind, template
        return self._messages[self._default]
