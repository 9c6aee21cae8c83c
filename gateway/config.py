"""Settings from a TOML file, with secrets only by reference to the environment.

`[defaults]` holds traffic settings every provider inherits; `[providers.<slug>]`
overrides them and names that provider's URL and credentials. Unknown keys
are an error at start-up, naming the key. No `[providers]` at all means the
embedded sandbox.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import ConfigError

__all__ = [
    "GatewaySettings",
    "ProviderSettings",
    "SandboxSettings",
    "SecretRef",
    "Settings",
    "Traffic",
    "load_settings",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """A secret named by its environment variable; the file never holds the value."""

    env: str

    def resolve(self) -> str:
        value = os.environ.get(self.env)
        if not value:
            raise ConfigError(f"The environment variable {self.env} is not set.")
        return value


class Traffic(_Strict):
    timeout_seconds: float = Field(10.0, gt=0)
    max_connections: int = Field(100, ge=1)
    max_concurrency: int = Field(16, ge=1)
    """Requests in flight to one provider at once."""
    max_retry_after_seconds: float = Field(5.0, ge=0)
    """A 429 asking to wait longer than this is reported, not waited out."""


class ProviderSettings(_Strict):
    """A real provider: its URL, its credentials, and any traffic overrides."""

    url: str
    username: str | None = None
    api_key: SecretRef | None = None
    api_secret: SecretRef | None = None
    password: SecretRef | None = None
    timeout_seconds: float | None = Field(None, gt=0)
    max_connections: int | None = Field(None, ge=1)
    max_concurrency: int | None = Field(None, ge=1)
    max_retry_after_seconds: float | None = Field(None, ge=0)

    def traffic(self, defaults: Traffic) -> Traffic:
        overrides = {
            name: value
            for name in Traffic.model_fields
            if (value := getattr(self, name)) is not None
        }
        return defaults.model_copy(update=overrides)

    def secret(self, name: str) -> str:
        ref = getattr(self, name)
        if not isinstance(ref, SecretRef):
            raise ConfigError(f'This provider needs `{name} = {{ env = "..." }}`.')
        return ref.resolve()


class GatewaySettings(_Strict):
    default_page_size: int = Field(20, ge=1)
    max_page_size: int = Field(100, ge=1)


class SandboxSettings(_Strict):
    seed: int = 7
    landlords: int = Field(8, ge=1)
    buildings: int = Field(60, ge=0)
    min_units_per_building: int = Field(1, ge=0)
    max_units_per_building: int = Field(8, ge=0)


class Settings(_Strict):
    gateway: GatewaySettings = GatewaySettings()
    defaults: Traffic = Traffic()
    providers: dict[str, ProviderSettings] = {}
    sandbox: SandboxSettings = SandboxSettings()

    @property
    def uses_sandbox(self) -> bool:
        return not self.providers


def load_settings(path: str | Path | None = None) -> Settings:
    """The file at `path`, or at `$PROPGATE_CONFIG`, or nothing: the sandbox defaults."""
    location = path or os.environ.get("PROPGATE_CONFIG")
    if not location:
        return Settings()
    try:
        data: dict[str, Any] = tomllib.loads(Path(location).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"Cannot read the configuration {location}: {error.strerror}.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"The configuration {location} is not valid TOML: {error}.") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"The configuration {location} is invalid: {problems}.") from None
