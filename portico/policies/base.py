"""What every policy module provides, and what a phase returns.

A policy module defines a frozen pydantic ``Config`` (validated once, when the
configuration changes) and a handler class built from it. The gateway calls the
handler's phase methods; a phase returns ``None`` to go on or a
:class:`Violation` to end the chain (or an awaitable of either). Phases:

* ``run(ex)``: request side, in the handler's stage (transport, IAM,
  requestPayloadProcessing, routing, LMT). Set ``needs_request_body`` to have
  ``ex.body`` filled (and forwarded as changed) before it runs.
* ``on_response(ex)``: responseProcessing, after the native answer; with
  ``needs_response_body`` the answer is buffered into ``ex.response`` first
  (else ``ex.response`` carries status and headers with an empty body, and
  changes to headers still apply).
* ``on_fault(ex, fault)``: responseFaultProcessing; may change ``fault``.
* ``on_complete(ex, status)``: after the response went out (LMT logging and
  monitoring); must not block."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from portico.policies.params import ParameterError, parameters_to_mapping

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange, Fault
    from portico.store import StoreTransaction



@dataclass(frozen=True, slots=True)
class Violation:
    """Ends the chain. ``key`` is stable: error templates, events and tests match on it."""

    status: int
    key: str
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


# A request-phase call (PolicyHandler.request_step): None, a Violation, or an awaitable of either.
Step = Callable[["Exchange"], "Violation | Awaitable[Violation | None] | None"]


class PolicyConfig(BaseModel):
    """Base of every policy's config: frozen, unknown parameters rejected.

    Single-valued parameters arrive as one-element lists on the wire; they are
    unwrapped here so the models can use plain scalar types."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _unwrap_single(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name)
        wants_list = field is not None and getattr(field.annotation, "__origin__", None) in (list, tuple)
        if isinstance(value, list) and not wants_list:
            if len(value) == 0:
                return None
            if len(value) == 1:
                return value[0]
        return value


class PolicyHandler:
    """Built once per configuration snapshot from a validated config."""

    template_key: ClassVar[str]
    stage: ClassVar[str]
    title: ClassVar[str]
    Config: ClassVar[type[PolicyConfig]]
    # Stages besides ``stage`` the action may be enforced in (validateAPISpec: request and response).
    extra_stages: ClassVar[tuple[str, ...]] = ()
    needs_request_body: ClassVar[bool] = False
    needs_response_body: ClassVar[bool] = False

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.placed_stage = self.stage  # where the policy enforces it; set when compiled
        self.action_id = ""  # the stored policy action it was built from; set when compiled

    @classmethod
    def allowed_stages(cls) -> tuple[str, ...]:
        return (cls.stage, *cls.extra_stages)

    def run(self, ex: Exchange) -> Violation | Awaitable[Violation | None] | None:
        return None

    def request_step(self) -> Step:
        """What the runtime calls in the request phase: ``run``, or a compiled callable doing the
        same (a handler whose work is all in compiled code saves the interpreted frame)."""
        return self.run

    def on_response(self, ex: Exchange) -> Violation | Awaitable[Violation | None] | None:
        return None

    def on_fault(self, ex: Exchange, fault: Fault) -> Awaitable[None] | None:
        return None

    def on_complete(self, ex: Exchange, status: int) -> None:
        return None

    @classmethod
    async def check_stored(cls, config: PolicyConfig, tx: StoreTransaction) -> None:
        """Checks against stored assets, run by the management API when the action is written (in
        its transaction): e.g. a keystore the config names exists and is loaded. Raise
        :class:`ConfigError` naming the parameter. Never run on the request path."""
        return None

    def takes_part(self, phase: str) -> bool:
        """Whether the runtime calls this handler's ``phase``: by default when its class implements
        it. A handler whose config makes a phase do nothing for every request says False, and
        calls of the API do not pay for it."""
        return getattr(type(self), phase) is not getattr(PolicyHandler, phase)


class ConfigError(ValueError):
    """A policy action's parameters do not fit its template; the message names the field."""


def validate_parameters(handler: type[PolicyHandler], parameters: Any) -> PolicyConfig:
    try:
        mapping = parameters_to_mapping(parameters)
        return handler.Config.model_validate(mapping)
    except ParameterError as exc:
        raise ConfigError(f"{handler.template_key}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or "parameters"
        raise ConfigError(f"{handler.template_key}: parameter '{loc}': {first['msg']}") from None
