"""Errors the gateway reports to its callers, each with a stable code.

Every failure a caller can see is one of these, so that `extensions.code` is
something a client can switch on; anything else is a bug and is masked.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "GatewayError",
    "InvalidCursor",
    "InvalidId",
    "NotFound",
    "BadUserInput",
    "ProviderError",
    "UpstreamInvalidResponse",
    "UpstreamUnavailable",
    "UpstreamRejected",
    "UpstreamDenied",
    "CredentialsRefused",
    "TokenRequestRejected",
    "UpstreamTimeout",
    "CircuitOpen",
    "OutcomeUnknown",
    "Conflict",
    "ModuleNotLicensed",
    "ValidationFailed",
    "Forbidden",
    "Unauthenticated",
    "LimitExceeded",
    "Refused",
    "Unconfirmed",
    "SubscriptionEnded",
    "SharedStateUnavailable",
    "RateLimited",
    "Resting",
    "TooManyProviderCalls",
    "LinksUnavailable",
    "ConfigError",
]


class GatewayError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = extensions

    @property
    def extensions(self) -> dict[str, Any]:
        """GraphQL's `extensions`: graphql-core copies it from an original error, so the code
        reaches the caller on every path (subscriptions included), shaped or not."""
        return {"code": self.code, **self.details}


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class InvalidId(GatewayError):
    code = "INVALID_ID"


class InvalidCursor(GatewayError):
    code = "INVALID_CURSOR"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class ProviderError(GatewayError):
    """A provider's part of an answer failed; the rest of the answer stands."""

    code = "UPSTREAM_ERROR"

    def __init__(self, provider: str, message: str, **extensions: Any) -> None:
        super().__init__(message, provider=provider, **extensions)
        self.provider = provider


class UpstreamUnavailable(ProviderError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamInvalidResponse(ProviderError):
    code = "UPSTREAM_INVALID_RESPONSE"


class UpstreamRejected(ProviderError):
    """The provider refused our request as malformed: a gateway bug, named so it is found."""

    code = "UPSTREAM_REJECTED"


class UpstreamDenied(ProviderError):
    """The provider refused the gateway access (HTTP 401 or 403, a fresh token refused too):
    the account the gateway uses there lacks a permission, which only an operator can grant.
    The request was not carried out."""


class CredentialsRefused(ProviderError):
    """A token endpoint refused the gateway's own credentials (`invalid_client`, `invalid_grant`,
    or else HTTP 401 or 403): the configured key, secret or password needs fixing, and asking
    again will not help."""

    code = "UPSTREAM_CREDENTIALS_REFUSED"


class TokenRequestRejected(ProviderError):
    """A token endpoint refused the token request itself (`invalid_request`, `invalid_scope`, or
    else HTTP 400 and other 4xx): the gateway and that server disagree on its form, grant or
    scope, which configuration may settle."""

    code = "UPSTREAM_TOKEN_REQUEST_REJECTED"
    definite = True
    """Whether the endpoint itself refused (RFC 6749's `error`, or a 400): asking again at
    once gets the same. False for another 4xx naming no error (a proxy's 404 or 405), which
    may not be the endpoint speaking at all."""


class UpstreamTimeout(UpstreamUnavailable):
    """The provider did not answer within the request's deadline."""

    code = "UPSTREAM_TIMEOUT"


class CircuitOpen(UpstreamUnavailable):
    """The provider failed repeatedly; calls are refused until a probe succeeds."""

    code = "CIRCUIT_OPEN"


class ValidationFailed(ProviderError):
    """The provider refused a write's content; `problems` names the fields to fix."""

    code = "VALIDATION_FAILED"

    def __init__(self, provider: str, message: str, problems: list[dict[str, str]]) -> None:
        super().__init__(provider, message)
        self.problems = problems


class ModuleNotLicensed(ProviderError):
    """The provider sells what was asked as a module the client has not bought (Primmo's
    FinancialStatements answers 403, its FAQ R8): the field that needs it has no data, the
    rest of the answer stands; the client's account manager can add the module."""

    code = "MODULE_NOT_LICENSED"

    def __init__(self, provider: str, module: str) -> None:
        super().__init__(
            provider,
            f"{provider} has not licensed the {module} module to this client: what needs it "
            "cannot be read.",
            module=module,
        )


class Conflict(ProviderError):
    """The provider refused a write that clashes with the record's state (HTTP 409): nothing
    was written; the caller reads the record again and decides."""

    code = "CONFLICT"


class OutcomeUnknown(ProviderError):
    """A write was sent but no answer came: it may or may not have happened. Never retried."""

    code = "OUTCOME_UNKNOWN"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Refused(GatewayError):
    """A provider refused a write for a reason the caller can act on; returned as data."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Unconfirmed(GatewayError):
    """A write that happened but could not be read back: the caller gets what is known of
    `record` and a code saying what is left to check, rather than a failure it would retry."""

    def __init__(self, code: str, message: str, record: Any) -> None:
        super().__init__(message)
        self.code = code
        self.record = record


class SubscriptionEnded(GatewayError):
    """A subscription that missed changes, ended so that the caller subscribes again."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SharedStateUnavailable(GatewayError):
    """What the replicas share (Redis) did not answer, where going on without it could do
    harm: a write under an idempotency key might happen twice. Nothing was sent."""

    code = "REDIS_UNAVAILABLE"


class LimitExceeded(GatewayError):
    """An operation over one of the configured limits, refused before any upstream request."""

    def __init__(self, code: str, message: str, limit: int, actual: int) -> None:
        super().__init__(message, limit=limit, actual=actual)
        self.code = code


class RateLimited(ProviderError):
    """The provider asked us to wait longer than we will make a caller wait."""

    code = "RATE_LIMITED"

    def __init__(self, provider: str, message: str, retry_after: float | None) -> None:
        """`retry_after`: the provider's wait in seconds, for the caller as `retryAfter`. A
        wait that is no number of seconds (`Retry-After: 1e400` reads as infinity) says
        nothing of when to come back, and is left out rather than failing the query."""
        wait: dict[str, int] = {}
        if retry_after is not None and math.isfinite(retry_after):
            wait["retryAfter"] = round(retry_after)
        super().__init__(provider, message, **wait)

    @property
    def retry_after(self) -> float | None:
        seconds = self.details.get("retryAfter")
        return float(seconds) if isinstance(seconds, int | float) else None


class Resting(RateLimited):
    """The gateway held the call back itself, sending nothing: the provider asked it to wait,
    or its quota is all but spent. To the caller it is the same `RATE_LIMITED`."""


class TooManyProviderCalls(ProviderError):
    """A query would make more one-key-at-a-time calls to a provider than one query may;
    refused before any of them was sent."""

    code = "TOO_MANY_PROVIDER_CALLS"

    def __init__(self, provider: str, message: str, limit: int, actual: int) -> None:
        super().__init__(provider, message, limit=limit, actual=actual)


class LinksUnavailable(GatewayError):
    """The link store could not be reached: what needs links (`sameAs`, `entityId`,
    `distinct` lists, linking) fails; everything else is answered."""

    code = "LINKS_UNAVAILABLE"
    reason = ""
    """The driver's reason, for the operator's log, never for a caller."""


class ConfigError(Exception):
    """Raised at start-up only: the configuration cannot be served."""
