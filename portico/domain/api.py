"""An API: its normalized definition, native endpoints, lifecycle and policies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NativeEndpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uri: str
    passSecurityHeaders: bool = True
    connectionTimeoutDuration: int = 0
    alias: bool = False


class MockService(BaseModel):
    """``PUT /apis/{id}/mock/enable|disable``: a mocked API is answered from its definition's examples."""

    model_config = ConfigDict(extra="ignore")

    enableMock: bool = False


class Api(BaseModel):
    """Stored under kind ``api``. ``policies`` lists the API's policy ids (the first is its own)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    apiName: str
    apiVersion: str
    apiDescription: str = ""
    type: str = "REST"
    isActive: bool = False
    apiDefinition: dict[str, Any] = Field(default_factory=dict)
    nativeEndpoint: list[NativeEndpoint] = Field(default_factory=list)
    owner: str = "Administrator"
    teams: list[str] = Field(default_factory=list)  # team ids (admin/teams.py); empty: not assigned yet
    policies: list[str] = Field(default_factory=list)
    maturityState: str = ""
    apiGroups: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    scopes: list[Any] = Field(default_factory=list)
    tracingEnabled: bool = False
    mockService: MockService = Field(default_factory=MockService)
    sourceFormat: str = "openapi"
    creationDate: int = 0
    lastModified: int = 0
    systemVersion: int = 1
    # Set on APIs ingested from another gateway (portico/federation/ingest.py): where the API lives.
    federation: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)


class ApiSource(BaseModel):
    """The file an API was created from, kept as given (kind ``api_source``, same id as the API)."""

    text: str
    format: str
    fileName: str = ""
