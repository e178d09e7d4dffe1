"""A development token issuer for the secure demo: an OAuth 2.0 client-credentials token
endpoint and the keys to check its tokens, on loopback, with three made-up users.

It stands in for a real identity provider (Keycloak, Auth0, oidc-provider: docs/security.md)
so that `make demo EXAMPLE=secure` runs on a machine with nothing else installed:

- `GET /.well-known/openid-configuration`: the discovery document (issuer, jwks_uri,
  token_endpoint);
- `GET /.well-known/jwks.json`: the public key; a new RSA key each run, so tokens from an
  earlier run stop working, as they would after a real provider rotated its keys;
- `POST /token` with `grant_type=client_credentials` and the client's id and secret (in the
  form, or HTTP Basic): `{"access_token", "token_type": "Bearer", "expires_in", "scope"}`.
  CORS is open, so the demo page (served by the gateway on another port) can fetch tokens.

Tokens live TOKEN_LIFETIME seconds, short on purpose: the demo's guard challenges a stream
before its token ends and the page renews it in band. Nothing here is fit for production:
the secrets are the users' names and are written in this file.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from joserfc import jwt
from joserfc.jwk import RSAKey

logger = logging.getLogger("ssegate.demo")

TOKEN_LIFETIME = 60  # seconds
AUDIENCE = "https://ssegate.demo"
MAX_FORM_BYTES = 4096


@dataclass(frozen=True)
class DemoUser:
    scope: str  # space-separated roles, the guard's `roles: scope`
    desk: str  # the exchange whose quotes this user watches (an attribute in routes)


# Each user's client secret is its name.
USERS: dict[str, DemoUser] = {
    "alice": DemoUser(scope="quotes:read", desk="nasdaq"),
    "bob": DemoUser(scope="quotes:read", desk="nyse"),
    "carol": DemoUser(scope="", desk="nasdaq"),  # no role: gets 403
}


class DemoIssuer:
    """Serves tokens and keys at `http://<host>:<port>` until `stop()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": f"demo-{int(time.time())}"})
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.issuer = f"http://{bound_host!s}:{bound_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-issuer", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "token_endpoint": f"{self.issuer}/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "alg": "RS256", "use": "sig"}]}

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, Any]:
        """The token endpoint's answer to a client-credentials request: (status, JSON)."""
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        user = USERS.get(client_id)
        if user is None or secret != client_id:
            return 401, {"error": "invalid_client"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": client_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "scope": user.scope,
            "desk": user.desk,
        }
        token = jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": user.scope,
        }


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except ValueError:
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _handler(issuer: DemoIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self._answer(200, issuer.discovery())
            elif self.path == "/.well-known/jwks.json":
                self._answer(200, issuer.jwks())
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if self.path != "/token":
                self._answer(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_FORM_BYTES:
                self._answer(413, {"error": "invalid_request"})
                return
            form = dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace")))
            status, body = issuer.grant(form, _basic(self.headers.get("Authorization")))
            self._answer(status, body)

        def do_OPTIONS(self) -> None:  # a page's preflight, when it sends HTTP Basic
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "GET, POST")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")

        def log_message(self, format: str, *args: Any) -> None:
            # The request line never holds a secret here (they travel in bodies and
            # headers), but a demo's console is for the gateway's lines.
            logger.debug("issuer: " + format, *args)

    return Handler
