"""``validateSchema`` (requestPayloadProcessing; also responseProcessing): the older schema
validation action: the payload (JSON against the API's JSON schema, XML against its XSD and
for well-formedness) without the parameter and content-type checks of ``validateAPISpec``.
A violation is a 400 naming the failing field."""

from __future__ import annotations

from pydantic import Field

from portico.policies._spec.checks import Enabled
from portico.policies._spec.policy import SpecPolicy
from portico.policies.base import PolicyConfig


class ValidateSchemaConfig(PolicyConfig):
    schemaValidationFlag: bool = Field(default=True, description="Validate payloads against the API's schemas.")


class ValidateSchema(SpecPolicy):
    template_key = "validateSchema"
    stage = "requestPayloadProcessing"
    title = "Validate Schema"
    Config = ValidateSchemaConfig

    def __init__(self, config: ValidateSchemaConfig) -> None:
        super().__init__(config)
        self.enabled = Enabled(body=config.schemaValidationFlag)
