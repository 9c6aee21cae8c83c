"""Settings from a TOML file, with secrets only by reference to the environment.

`[defaults]` holds traffic settings every provider inherits; `[providers.<slug>]`
overrides them and names that provider's URL and credentials. Unknown keys
are an error at start-up, naming the key. No `[providers]` at all means the
embedded sandbox.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from gateway.errors import ConfigError
from gateway.state.links import url_problem

__all__ = [
    "AbsoluteUrl",
    "ApiKey",
    "AuthSettings",
    "CacheSettings",
    "ConnectorOptions",
    "GatewaySettings",
    "JwtSettings",
    "Limits",
    "LinkSettings",
    "ObservabilitySettings",
    "PersistedQuerySettings",
    "ProviderSettings",
    "SandboxSettings",
    "SecretRef",
    "VaultSettings",
    "Settings",
    "Traffic",
    "connector_options",
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
    """How the gateway treats one provider; `[defaults]`, overridden per provider."""

    connect_timeout_seconds: float = Field(3.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    """Reading a response, writing a request, or waiting for a pooled connection."""
    max_connections: int = Field(100, ge=1)
    max_concurrency: int = Field(16, ge=1)
    """Requests in flight to one provider at once."""
    max_retry_after_seconds: float = Field(5.0, ge=0)
    """A 429 asking to wait longer than this is reported, not waited out."""
    retries: int = Field(2, ge=0)
    """Extra attempts for an idempotent read that failed in transit or with 502/503/504."""
    retry_budget_ratio: float = Field(0.2, ge=0, le=1)
    """Retries add at most this share to the requests sent: they cannot multiply an outage."""
    breaker_failures: int = Field(5, ge=1)
    """Consecutive failed calls that open the provider's circuit."""
    breaker_open_seconds: float = Field(30.0, gt=0)
    """How long an open circuit refuses calls before one probe is let through."""
    breaker_slow_share: float = Field(0.25, gt=0, le=1)
    """This share of the request deadline is the slow time: the circuit also opens when the
    p95 of the provider's recent answers is above it, or when `breaker_stalled_calls` calls
    have waited that long while it answered nothing. 1 turns the latency breaker off."""
    breaker_slow_min_calls: int = Field(20, ge=1)
    """Answers timed before their p95 can open the circuit."""
    breaker_stalled_calls: int = Field(4, ge=1)
    """Calls waiting longer than the slow time at once, with no answer from the provider in
    that time, that open its circuit (and end the reads among them at once)."""
    quota_reserve: float = Field(0.05, ge=0, lt=1)
    """Share of a published quota (`X-RateLimit-Limit`) below which the rest is spread
    evenly until `X-RateLimit-Reset`."""
    max_rest_seconds: float = Field(3600.0, gt=0, le=365 * 24 * 3600)
    """How far ahead the gateway takes the provider's word (`Retry-After`,
    `X-RateLimit-Reset`): asked to wait longer (`1e9` s, a reset years away), it sends a call
    after this long to see, and rests again if still refused. A published quota's window
    counts this long at most, so a provider with a daily quota needs a day here."""
    max_fan_out_per_query: int = Field(100, ge=1)
    """Calls one query may make to the provider one key at a time (where it cannot batch); a
    fan-out beyond it is refused whole, before any of its calls is sent."""
    fan_out_concurrency: int = Field(8, ge=1)
    """How many calls of one such fan-out are in flight at once: half of `max_concurrency`
    by default, so one query's fan-out leaves room for the others'."""
    max_response_bytes: int = Field(20_000_000, ge=1024)


def _absolute(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    return url


AbsoluteUrl = Annotated[str, AfterValidator(_absolute)]
"""A URL on a host of its own: one a base URL cannot be assumed for."""


class ConnectorOptions(_Strict):
    """A connector's `[providers.<name>.options]`, none by default. A connector that has
    options extends this, so a misspelt option is refused at start-up, not ignored."""


Options = TypeVar("Options", bound=ConnectorOptions)


def connector_options(model: type[Options], provider: str, options: Mapping[str, Any]) -> Options:
    """The options read as `model` says; start-up checks every provider's, and a connector
    reads its own the same way, so both see one set of defaults."""
    try:
        return model.model_validate(options)
    except ValidationError as error:
        problems = _problems(error)
        raise ConfigError(f"[providers.{provider}.options] is invalid: {problems}.") from None


class ProviderSettings(_Strict):
    """A real provider: its URL, its credentials, and any `Traffic` key as an override."""

    url: str
    username: str | None = None
    api_key: SecretRef | None = None
    api_secret: SecretRef | None = None
    api_token: SecretRef | None = None
    password: SecretRef | None = None
    webhook_secret: SecretRef | None = None
    """Proves a delivery to /webhooks/<provider> came from the provider (see README)."""
    options: dict[str, Any] = {}
    """Provider-specific switches (SCOM: `auto_activate`), documented with each provider and
    checked against its connector's `ConnectorOptions` at start-up."""
    overrides: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _traffic_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        overrides = {key: value for key, value in data.items() if key in Traffic.model_fields}
        rest = {key: value for key, value in data.items() if key not in overrides}
        return {**rest, "overrides": overrides}

    @model_validator(mode="after")
    def _valid_overrides(self) -> ProviderSettings:
        Traffic.model_validate(self.overrides)
        return self

    def traffic(self, defaults: Traffic) -> Traffic:
        return Traffic.model_validate({**defaults.model_dump(), **self.overrides})

    def secret(self, name: str) -> str:
        ref = getattr(self, name)
        if not isinstance(ref, SecretRef):
            raise ConfigError(f'This provider needs `{name} = {{ env = "..." }}`.')
        return ref.resolve()


class Limits(_Strict):
    """Checked before any upstream request; each refusal names the limit it hit."""

    max_depth: int = Field(12, ge=1)
    max_introspection_depth: int = Field(15, ge=1)
    """Nesting inside `__schema` and `__type`, counted apart from `max_depth`: the standard
    introspection queries nest 14 deep there (`ofType` nine times under a field's argument)."""
    max_aliases: int = Field(30, ge=0)
    max_root_fields: int = Field(10, ge=1)
    max_fields: int = Field(5000, ge=1)
    """Fields once every fragment is expanded where it is spread, as execution expands them."""
    max_tokens: int = Field(3000, ge=10)
    max_characters: int = Field(100_000, ge=1024)
    """Of the operation's text: with `max_tokens`, checked before it is parsed."""
    max_cost: int = Field(50_000, ge=1)
    """Estimated objects: page sizes multiplied down the nesting."""
    list_factor: int = Field(10, ge=1)
    """What a relation list with no `first` (a building's units) counts for in the cost."""
    max_body_bytes: int = Field(200_000, ge=1024)
    introspection: bool = True


class PersistedQuerySettings(_Strict):
    """Apollo's automatic persisted queries, or a safelist (README: Persisted queries)."""

    store_characters: int = Field(5_000_000, ge=0)
    """Query text kept for automatic persisted queries, least recently used out first;
    0 keeps none (clients then always send the full query)."""
    safelist: str | None = None
    """A manifest of the only operations that run; nothing is registered at run time."""


class GatewaySettings(_Strict):
    default_page_size: int = Field(20, ge=1)
    max_page_size: int = Field(500, ge=1)
    public_url: str | None = None
    """Where providers reach this gateway (`<public_url>/webhooks/<provider>`); with it, the
    gateway subscribes to provider webhooks at start-up. A sandbox gateway uses its own URL."""
    subscribe_at_start: bool = True
    """Subscribe to provider webhooks at start-up (when the public URL is known)."""
    request_deadline_seconds: float = Field(10.0, gt=0)
    """Every provider call of one GraphQL request ends by then; late parts become errors."""
    compiled_execution: bool = True
    """Queries run through plans compiled once per operation (`schema/compiled`); off, every
    operation runs through graphql-core's executor, as before them."""
    limits: Limits = Limits()
    persisted_queries: PersistedQuerySettings = PersistedQuerySettings()
    get_max_age_seconds: int = Field(0, ge=0)
    """How long a caller may reuse a GET's answer without asking again; 0: revalidate each
    time (by ETag)."""
    redis_url: str | SecretRef | None = None
    """Redis shared by several replicas (tokens, entity cache, webhook de-duplication, change
    feed); `$PROPGATE_REDIS_URL` overrides it. A URL with a password must come from the
    environment (`{ env = "..." }`). Absent: everything stays in this process."""

    @model_validator(mode="after")
    def _no_password_in_the_file(self) -> GatewaySettings:
        if isinstance(self.redis_url, str) and urlsplit(self.redis_url).password:
            raise ValueError(
                'redis_url holds a password: name it by environment, redis_url = { env = "..." }'
            )
        return self

    def redis(self) -> str | None:
        """The Redis URL in force: the environment's, else the file's, else none."""
        override = os.environ.get("PROPGATE_REDIS_URL")
        if override:
            return override
        if isinstance(self.redis_url, SecretRef):
            return self.redis_url.resolve()
        return self.redis_url


class ApiKey(_Strict):
    """A caller's key, stored as its SHA-256 so the file holds nothing usable."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[str]


class JwtSettings(_Strict):
    algorithm: Literal["HS256", "RS256"]
    secret: SecretRef | None = None
    """HS256: the shared secret, from the environment."""
    public_key_file: str | None = None
    """RS256: a PEM public key."""
    jwks_file: str | None = None
    """RS256: a JWKS document; the token's `kid` picks the key."""
    audience: str | None = None
    issuer: str | None = None
    scopes_claim: str = "scope"


class AuthSettings(_Strict):
    api_keys: list[ApiKey] = []
    jwt: JwtSettings | None = None

    @property
    def configured(self) -> bool:
        return bool(self.api_keys) or self.jwt is not None


class SandboxSettings(_Strict):
    """The world `gateway serve` and `gateway sandbox` generate when no provider is real."""

    seed: int = 7
    landlords: int = Field(20, ge=1)
    buildings: int = Field(60, ge=0)
    min_units_per_building: int = Field(1, ge=0)
    max_units_per_building: int = Field(8, ge=0)

    @model_validator(mode="after")
    def _a_range(self) -> SandboxSettings:
        if self.min_units_per_building > self.max_units_per_building:
            raise ValueError("min_units_per_building is more than max_units_per_building")
        return self


class VaultSettings(_Strict):
    """Where secrets handed over at run time (SCOM landlord tokens) are kept, encrypted."""

    path: str = "propgate-vault.sqlite3"
    key: SecretRef = SecretRef(env="PROPGATE_VAULT_KEY")


DEFAULT_PRECEDENCE = ("primmo", "pms", "scom", "mycrm", "leap")
"""`[links.precedence] default`: the systems of record for buildings, units and tenants
first; listings last but one."""


class LinkSettings(_Strict):
    """Records linked across providers (README: Linking records)."""

    url: str | SecretRef | None = None
    """SQLAlchemy's URL of the link store, with an async driver: a SQLite file
    (`sqlite+aiosqlite:///path`) or PostgreSQL for several replicas
    (`postgresql+asyncpg://user@host/db`); `$PROPGATE_LINKS_URL` overrides it. Unset: the
    file `propgate-links.sqlite3`, or for a sandbox gateway (whose world is made anew at
    each start) memory. A URL with a password must come from the environment."""
    threshold: float = Field(0.9, ge=0, le=1)
    """A rule's score from which two records are linked; below it they are proposed."""
    write_back: bool = True
    """Give a relationship LEAP records, once linked, the gateway's name as its external id."""
    rebuild_at_start: bool = True
    """A sandbox `gateway serve` links its world's records once it listens (its world is new
    at each start); a gateway with real providers never does (`gateway links rebuild`)."""
    precedence: dict[str, list[str]] = {}
    """Provider order: `default`, per type (`Landlord`), per field (`Landlord.businessNumber`)."""

    @model_validator(mode="after")
    def _no_password_in_the_file(self) -> LinkSettings:
        if isinstance(self.url, str) and urlsplit(self.url).password:
            raise ValueError('url holds a password: name it by environment, url = { env = "..." }')
        return self

    def store_url(self, sandbox: bool) -> str:
        """The URL the store is to use, once it is one it can use: a wrong driver or a
        SQLite file that cannot be made is a mistake to say at start, not an outage."""
        override = os.environ.get("PROPGATE_LINKS_URL")
        if override:
            url, named = override, "$PROPGATE_LINKS_URL (for [links] url)"
        elif isinstance(self.url, SecretRef):
            url, named = self.url.resolve(), f"[links] url (${self.url.env})"
        elif self.url:
            url, named = self.url, "[links] url"
        elif sandbox:
            url, named = "sqlite+aiosqlite://", "the sandbox's link store"
        else:
            url, named = "sqlite+aiosqlite:///propgate-links.sqlite3", "the link store's default"
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError(f"{named} {problem}.")
        return url


class CacheSettings(_Strict):
    ttl: dict[str, float] = {}
    """Seconds a record loaded by id is kept, per "provider.Type" (e.g. "primmo.Tenant" = 60);
    absent or 0 is off. Lists are never cached."""


class ObservabilitySettings(_Strict):
    """Metrics and traces (README: Observability); logs are `gateway serve --log-format`."""

    max_operation_names: int = Field(100, ge=0)
    """Distinct operation names the metrics keep as labels; later names count as `<other>`."""
    otlp_endpoint: str | None = None
    """Export traces over OTLP/HTTP to this base URL (`/v1/traces` is added); without it, the
    standard `OTEL_EXPORTER_OTLP_ENDPOINT` variables are used, and without those, no traces."""


class Settings(_Strict):
    gateway: GatewaySettings = GatewaySettings()
    cache: CacheSettings = CacheSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    auth: AuthSettings = AuthSettings()
    vault: VaultSettings = VaultSettings()
    links: LinkSettings = LinkSettings()
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
        raise ConfigError(f"The configuration {location} is invalid: {_problems(error)}.") from None


def _problems(error: ValidationError) -> str:
    """Each problem with the key it is about: `gateway.max_page_sise: Extra inputs are ...`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
    )
