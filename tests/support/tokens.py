"""A token issuer for tests: signing keys (joserfc), tokens, and a JWKS served over HTTP
on loopback whose keys can be rotated while a gateway uses them."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ISSUER = "https://issuer.test"
AUDIENCE = "https://gateway.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """Keys by kid, each with its algorithm; `token` signs claims with one of them."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.add("rsa-1", "RS256")

    def add(self, kid: str, algorithm: str) -> Any:
        if algorithm.startswith(("RS", "PS")):
            key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": algorithm})
        else:
            curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[algorithm]
            key = ECKey.generate_key(curve, parameters={"kid": kid, "alg": algorithm})
        self.keys[kid] = key
        return key

    def remove(self, kid: str) -> None:
        del self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys.values()]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "scope": "read:prices",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        kid: str = "rsa-1",
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = self.keys[kid]
        head = {"alg": key.alg, "kid": kid, **(header or {})}
        return jwt.encode(head, self.claims(**claims), key)


def unsigned(claims: Mapping[str, Any], alg: str = "none") -> str:
    """A token with `alg: none` and no signature (what a forger sends)."""
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(dict(claims)).encode())}."


DISCOVERY_PATH = "/.well-known/openid-configuration"


class JwksServer:
    """Serves `issuer.jwks()` at http://127.0.0.1:<port>/jwks.json (counting fetches), and
    fresh tokens at /token?sub=<identity>&ttl=<seconds> (scope `read:notes`), with CORS, so
    a page can fetch them as a real identity provider's token endpoint would give them.

    By default the JWKS is served at every other path too. Set `jwks_path` to serve it at
    that path only (404 elsewhere), and `discovery` to answer
    /.well-known/openid-configuration: a dict is served as the document (JSON, see
    `openid_configuration`), bytes as they are, an int as a bare status (404, 503)."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.fetches = 0
        self.discoveries = 0  # requests for the discovery document, when `discovery` is set
        self.tokens_issued = 0
        self.failing = False  # answer 503 to JWKS requests while set
        self.jwks_path: str | None = None
        self.discovery: dict[str, Any] | bytes | int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    self._token()
                    return
                if outer.discovery is not None and self.path == DISCOVERY_PATH:
                    outer.discoveries += 1
                    self._discovery(outer.discovery)
                    return
                if outer.jwks_path is not None and self.path != outer.jwks_path:
                    self._status(404)
                    return
                outer.fetches += 1
                if outer.failing:
                    self._status(503)
                    return
                body = json.dumps(outer.issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=60")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _status(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _discovery(self, answer: dict[str, Any] | bytes | int) -> None:
                if isinstance(answer, int):
                    self._status(answer)
                    return
                body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _token(self) -> None:
                query = dict(parse_qsl(urlsplit(self.path).query))
                ttl = int(query.get("ttl", "300"))
                token = outer.issuer.token(
                    sub=query.get("sub", "alice"), scope="read:notes", exp=int(time.time()) + ttl
                )
                outer.tokens_issued += 1
                body = token.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/jwks.json"

    def openid_configuration(self, **overrides: Any) -> dict[str, Any]:
        """A discovery document naming this server: its base URL as the issuer (the one a
        guard discovering from it is configured with), its JWKS URL, with `overrides`."""
        document: dict[str, Any] = {
            "issuer": self.base,
            "jwks_uri": self.url,
            "token_endpoint": f"{self.base}/token",
        }
        document.update(overrides)
        return document

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        # Polling for shutdown every 50 ms (not 0.5 s): stopping it does not slow each test.
        thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
