"""``validateAPISpec`` (requestPayloadProcessing; also responseProcessing): check calls against
the API's own specification.

In the request stage: the body against the operation's JSON schema (``$ref``s into
``components/schemas`` or ``definitions`` resolved) or, for XML, its XSD (``x-xsd``) and
well-formedness; query, path, cookie and header parameters (required, type, enum, pattern,
bounds, ...); the request's content type against the declared ones, with custom content types
mapped to their base type (``/configurations/customContentTypes``); and extra header rules
(``validateHTTPHeaders``). In the response stage: the response body against the schema of its
status code. A violation is a 400 naming the failing field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from portico.policies._spec.checks import HEADER_FAILED, PREFIX, Enabled
from portico.policies._spec.policy import SpecPolicy
from portico.policies.base import PolicyConfig, Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange


class HeaderRuleConfig(PolicyConfig):
    headerKey: str = Field(min_length=1, description="Name of a header the request must carry.")
    headerValueNonRequired: str | None = Field(
        default=None, description="The value the header must have (case-insensitive); any value when absent.")


class HeaderRulesConfig(PolicyConfig):
    logicalConnector: Literal["AND", "OR"] = Field(
        default="AND", description="AND: every header rule must hold; OR: at least one.")
    httpHeaderNonReqValue: list[HeaderRuleConfig] = Field(min_length=1, description="The header rules.")


class ValidateAPISpecConfig(PolicyConfig):
    schemaValidationFlag: bool = Field(default=True, description="Validate bodies against the API's schemas.")
    validateQueryParams: bool = Field(default=False, description="Validate query parameters.")
    validatePathParams: bool = Field(default=False, description="Validate path parameters.")
    validateCookieParams: bool = Field(default=False, description="Validate cookie parameters.")
    validateContentTypes: bool = Field(
        default=False, description="Refuse bodies whose content type the operation does not declare.")
    headersValidationFlag: bool = Field(default=False, description="Validate header parameters of the spec.")
    validateHTTPHeaders: HeaderRulesConfig | None = Field(
        default=None, description="Extra header rules checked on every request.")


class ValidateAPISpec(SpecPolicy):
    template_key = "validateAPISpec"
    stage = "requestPayloadProcessing"
    title = "Validate API Specification"
    Config = ValidateAPISpecConfig

    def __init__(self, config: ValidateAPISpecConfig) -> None:
        super().__init__(config)
        self.enabled = Enabled(
            body=config.schemaValidationFlag, query=config.validateQueryParams, path=config.validatePathParams,
            headers=config.headersValidationFlag, cookies=config.validateCookieParams,
            content_types=config.validateContentTypes,
        )
        rules = config.validateHTTPHeaders
        self._any = rules is not None and rules.logicalConnector == "OR"
        self._rules = tuple(
            (r.headerKey.lower().encode("latin-1"), r.headerKey,
             r.headerValueNonRequired.strip().lower() if r.headerValueNonRequired else None)
            for r in (rules.httpHeaderNonReqValue if rules else ())
        )

    def run(self, ex: Exchange) -> Violation | None:
        if self._rules and self.placed_stage != "responseProcessing":
            violation = self._check_header_rules(ex)
            if violation is not None:
                return violation
        return super().run(ex)

    def _check_header_rules(self, ex: Exchange) -> Violation | None:
        failures: list[str] = []
        for raw_name, name, expected in self._rules:
            value = ex.request.header(raw_name)
            if value is None:
                failures.append(f"header '{name}' is required")
            elif expected is not None and _header_value(value) != expected:
                failures.append(f"header '{name}' must be {expected!r}")
            elif self._any:
                return None
        if not failures or (self._any and len(failures) < len(self._rules)):
            return None
        return Violation(400, HEADER_FAILED, PREFIX + "; ".join(failures))


def _header_value(value: bytes) -> str:
    """Compare a header by its value; for media types, without parameters (``; charset=...``)."""
    text = value.decode("latin-1").strip().lower()
    main = text.split(";", 1)[0].strip()
    return main if "/" in main else text
