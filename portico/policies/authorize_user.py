"""``authorizeUser`` (IAM): only the listed users, members of the listed groups or of the listed
teams (access profiles) may call. The user is the one an earlier IAM action authenticated
(``inboundAuthTransport``, ``evaluatePolicy`` with HTTP basic); without one, the HTTP basic
credentials of the call are verified here. Unauthenticated: 401; not allowed: 403.

Groups and teams come from the user asset's ``groups``/``accessProfiles`` lists (snapshot part
``user_groups``); their management arrives with the users issue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from portico.policies.base import PolicyConfig, PolicyHandler, Violation
from portico.policies.inbound_auth_transport import authenticate

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange

# ``snap.extras[USER_GROUPS][loginId] = (groups, accessProfiles)``, built by gateway/parts/user_groups.py.
USER_GROUPS = "userGroups"


class AuthorizeUserConfig(PolicyConfig):
    users: list[str] = Field(default_factory=list, description="Login ids of the users allowed to call.")
    groups: list[str] = Field(default_factory=list, description="Groups whose members may call.")
    accessProfiles: list[str] = Field(default_factory=list, description="Teams whose members may call.")

    @model_validator(mode="after")
    def _something_allowed(self) -> AuthorizeUserConfig:
        if not (self.users or self.groups or self.accessProfiles):
            raise ValueError("name at least one of users, groups or accessProfiles")
        return self


class AuthorizeUser(PolicyHandler):
    template_key = "authorizeUser"
    stage = "IAM"
    title = "Authorize User"
    Config = AuthorizeUserConfig

    def __init__(self, config: AuthorizeUserConfig) -> None:
        super().__init__(config)
        self._users = frozenset(config.users)
        self._groups = frozenset(config.groups)
        self._teams = frozenset(config.accessProfiles)

    async def run(self, ex: Exchange) -> Violation | None:
        if ex.user is None:
            failed = await authenticate(ex)
            if failed is not None:
                return failed
        user = ex.user or ""
        if user in self._users:
            return None
        groups, teams = ex.snapshot.extras.get(USER_GROUPS, {}).get(user, (frozenset(), frozenset()))
        if self._groups & groups or self._teams & teams:
            return None
        return Violation(403, "USER_NOT_AUTHORIZED", f"The user {user} is not authorized to call this API.")
