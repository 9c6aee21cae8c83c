"""Who is calling the gateway, and what they may do.

Callers present an API key (`X-API-Key`, or `Authorization: Bearer <key>`)
checked against SHA-256 hashes from the configuration, or a bearer JWT
(HS256 with a shared secret, RS256 with a public key or a JWKS file). Scopes
follow the pms RBAC vocabulary: `property:read`, `tenant:read`,
`tenant:manage`, `landlord:manage`, `relationship:manage`, `lease:manage`, `financial:read`,
`financial:manage`, `maintenance:manage`, `unit:manage`, `property:manage`, and
`gateway:read` for the providers' health; `*` is all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from gateway.config import AuthSettings, JwtSettings
from gateway.errors import ConfigError, Unauthenticated

__all__ = ["DEV_KEY", "Authenticator", "Caller"]

DEV_KEY = "propgate-dev-key"
"""The sandbox's documented development key, valid only when no real provider is configured."""


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]
    expires_at: float | None = None
    """A bearer token's `exp`: a long-lived websocket stops serving the caller then."""
    identity: str | None = None
    """Who this is, told apart from every other caller: an API key's `key:<name>`, a token's
    `jwt:<iss> <sub>`; None for a token without `sub`, which could be anyone's (what is
    kept per caller, an idempotency key, is refused to it)."""

    def allows(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class _JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings
        self._keys: dict[str | None, Any] = {}
        if settings.algorithm == "HS256":
            if settings.secret is None:
                raise ConfigError("[auth.jwt] HS256 needs a `secret` from the environment.")
            self._keys[None] = settings.secret.resolve()
        elif settings.public_key_file:
            self._keys[None] = Path(settings.public_key_file).read_text(encoding="utf-8")
        elif settings.jwks_file:
            document = json.loads(Path(settings.jwks_file).read_text(encoding="utf-8"))
            for key in jwt.PyJWKSet.from_dict(document).keys:
                self._keys[key.key_id] = key.key
        else:
            raise ConfigError("[auth.jwt] RS256 needs `public_key_file` or `jwks_file`.")

    def verify(self, token: str) -> Caller:
        """A caller for a token whose signature, audience, issuer and `exp` hold.

        PyJWT checks `exp` as `int(exp)`, which lets a numeric string through (and would
        leave a subscription nothing to end at) and cuts a fraction off; `exp` must be a
        JSON number here, and is read as PyJWT read it, so a connection ends at the very
        second a request made then would have been refused.
        """
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) or self._keys.get(None)
            if key is None:
                raise Unauthenticated("The token's signing key is not known.")
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._settings.algorithm],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={"verify_aud": self._settings.audience is not None, "require": ["exp"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(
                f"The bearer token is not valid ({type(error).__name__})."
            ) from None
        exp = claims["exp"]
        if not isinstance(exp, int | float):
            raise Unauthenticated("The bearer token's `exp` is not a number (a NumericDate).")
        raw = claims.get(self._settings.scopes_claim, "")
        scopes = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        subject = claims.get("sub")
        return Caller(
            str(subject or "jwt"),
            frozenset(str(scope) for scope in scopes),
            int(exp),
            f"jwt:{claims.get('iss', '')} {subject}" if subject else None,
        )


class Authenticator:
    def __init__(self, settings: AuthSettings, *, development: bool) -> None:
        self._keys = {
            key.sha256: Caller(key.name, frozenset(key.scopes), identity=f"key:{key.name}")
            for key in settings.api_keys
        }
        if development and not settings.configured:
            self._keys[_digest(DEV_KEY)] = Caller(
                "development", frozenset({"*"}), identity="key:development"
            )
        self._jwt = _JwtVerifier(settings.jwt) if settings.jwt else None
        self.development_key = DEV_KEY if development and not settings.configured else None

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        presented = headers.get("x-api-key")
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if presented is None and scheme.lower() == "bearer" and credential:
            presented = credential
        if not presented:
            raise Unauthenticated("Send an API key (X-API-Key) or a bearer token.")
        digest = _digest(presented)
        for known, caller in self._keys.items():
            if hmac.compare_digest(known, digest):
                return caller
        if self._jwt is not None and presented.count(".") == 2:
            return self._jwt.verify(presented)
        raise Unauthenticated("The API key or token is not valid.")
