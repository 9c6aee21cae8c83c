"""Authlib's OAuth2 authorization server in front of MyCRM-shaped data, as an HTTP app.

The sandbox shows what we read in RFC 6749; an independent implementation shows
what a standard token endpoint accepts. Authlib has no Starlette integration, so
this is one, shaped like its Flask one (`authlib.integrations.flask_oauth2`): a
request adapter and a response adapter over its generic `AuthorizationServer`,
with its `ClientCredentialsGrant` and `client_secret_basic`, and the client and
token stores it asks for. The API behind it is the MyCRM sandbox's, opened only
by the bearer tokens Authlib's `ResourceProtector` (`BearerTokenValidator`)
accepts, so the whole MyCRM connector runs against it.
"""

from __future__ import annotations

import hmac
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Error, ResourceProtector
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from gateway.clock import Clock
from gateway.sandbox import mycrm
from gateway.sandbox.data import World
from gateway.sandbox.server import ProviderState, counting

__all__ = [
    "API",
    "AUTH",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "NO_GRANT_CLIENT_ID",
    "TOKEN_PATH",
    "create_app",
]

AUTH = "/auth"
API = "/api"
TOKEN_PATH = "/oauth/token"
"""Below `AUTH`; the token endpoint's path as the shared counter and faults see it."""
CLIENT_ID = "propgate"
CLIENT_SECRET = "s3cr:et%41 +é"
"""Reserved characters: only a client that form-urlencodes the secret before Base64
(RFC 6749 §2.3.1) is let in, since Authlib percent-decodes what it receives."""
NO_GRANT_CLIENT_ID = "propgate-unauthorized"
"""A client with the same secret that may use no grant: Authlib refuses it `unauthorized_client`."""
SCOPES = ("openid",)
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class _Client(ClientMixin):
    client_id: str
    secret: str
    grant_types: tuple[str, ...] = (grants.ClientCredentialsGrant.GRANT_TYPE,)

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: Collection[str] | str | None) -> str:
        asked = scope.split() if isinstance(scope, str) else scope or ()
        return " ".join(name for name in asked if name in SCOPES)

    def check_redirect_uri(self, _redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return (method, endpoint) == ("client_secret_basic", "token")

    def check_response_type(self, _response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass(frozen=True)
class _Token(TokenMixin):
    client: _Client
    scope: str
    issued_at: float
    expires_in: int
    clock: Clock

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.clock() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> None:
        return None

    def get_client(self) -> _Client:
        return self.client


@dataclass(frozen=True)
class _Received:
    """What the Starlette endpoint read of a request, for Authlib's synchronous server."""

    method: str
    url: str
    headers: Mapping[str, str]
    values: list[tuple[str, str]]
    """The query string's and the form body's parameters, as Flask's `request.values`."""


class _Payload(OAuth2Payload):
    def __init__(self, values: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in values:
            self._datalist[name].append(value)

    @property
    def data(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._datalist.items()}

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, received: _Received) -> None:
        super().__init__(method=received.method, uri=received.url, headers=received.headers)
        self.payload = _Payload(received.values)


class StarletteAuthorizationServer(AuthorizationServer):
    """Authlib's generic server, fed what a Starlette endpoint read and answering with a
    Starlette response."""

    def __init__(self, clients: list[_Client], clock: Clock, lifetime: Callable[[], float]):
        super().__init__(scopes_supported=list(SCOPES))
        self._clients = {client.client_id: client for client in clients}
        self._clock = clock
        self.tokens: dict[str, _Token] = {}
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                lambda **_: generate_token(42),
                expires_generator=lambda _client, _grant_type: int(lifetime()),
            ),
        )

    # Authlib answers an unknown client (None here) with invalid_client; types-Authlib
    # types the hook as always finding one.
    def query_client(self, client_id: str) -> _Client | None:  # type: ignore[override]
        return self._clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        client = request.client
        assert isinstance(client, _Client), "query_client gives only these"
        self.tokens[token["access_token"]] = _Token(
            client, token.get("scope", ""), self._clock(), token["expires_in"], self._clock
        )

    def create_oauth2_request(self, request: _Received) -> OAuth2Request:
        return _Request(request)

    def handle_response(
        self,
        status_code: int,
        payload: Any,
        headers: Mapping[str, str] | list[tuple[str, str]],
    ) -> Response:
        """Authlib's grants hand over their headers as a list of pairs, which
        types-Authlib types as a mapping; both are taken."""
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        return Response(body, status_code=status_code, headers=dict(headers))

    def send_signal(self, *_args: Any, **_kwargs: Any) -> None:
        return None


class _Bearer(BearerTokenValidator):
    def __init__(self, tokens: Mapping[str, _Token]) -> None:
        super().__init__()
        self._tokens = tokens

    def authenticate_token(self, token_string: str) -> _Token | None:
        return self._tokens.get(token_string)


def create_app(world: World, state: ProviderState) -> Starlette:
    """Authlib's token endpoint at `AUTH + TOKEN_PATH` and MyCRM's API under `API`.

    Both count into `state`, whose knobs they share with the sandbox: its faults hit
    the token endpoint as a rate limiter or an outage in front of it would, and
    `token_lifetime` sets the `expires_in` Authlib grants.
    """
    server = StarletteAuthorizationServer(
        [_Client(CLIENT_ID, CLIENT_SECRET), _Client(NO_GRANT_CLIENT_ID, CLIENT_SECRET, ())],
        state.clock,
        lambda: state.token_lifetime or mycrm.TOKEN_LIFETIME,
    )
    protector = ResourceProtector()
    protector.register_token_validator(_Bearer(server.tokens))

    async def token(request: Request) -> Response:
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        body = (await request.body()).decode("utf-8", "replace")
        form = parse_qsl(body, keep_blank_values=True) if media == FORM else []
        received = _Received(
            request.method,
            str(request.url),
            request.headers,
            [*request.query_params.multi_items(), *form],
        )
        # What `handle_response` returned; types-Authlib types it as the generic
        # server's (status, body, headers) tuple.
        response: Response = server.create_token_response(received)  # type: ignore[assignment]
        return response

    def admits(request: Request) -> bool:
        try:
            # types-Authlib leaves this method unannotated.
            protector.validate_request(  # type: ignore[no-untyped-call]
                list(SCOPES), JsonRequest(request.method, str(request.url), request.headers)
            )
        except OAuth2Error:
            return False
        return True

    state.token_paths = frozenset({TOKEN_PATH})
    authorization = Starlette(routes=[Route(TOKEN_PATH, token, methods=["POST"])])
    return Starlette(
        routes=[
            Mount(AUTH, counting(authorization, state)),
            Mount(API, mycrm.create_api(world, state, admits)),
        ]
    )
