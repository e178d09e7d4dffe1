"""What the JWT guard costs one stream request, on the loop: `authorize()` with a token seen
before (the verified-token cache: a resume storm's case) and with a new token (a first
connect: RS256 verification). Run: `python -m benchmarks.guard_cost` (decision 0011)."""

from __future__ import annotations

import argparse
import json
import time
from http import HTTPStatus

from joserfc import jwt
from joserfc.jwk import RSAKey

from ssegate.guard.authorize import RouteGuard, authorize
from ssegate.guard.guard import CredentialSources, JwtGuard
from ssegate.guard.jwt import JwtRules
from ssegate.guard.keys import key_set
from ssegate.http.request import Request
from ssegate.rejection import Rejection

ISSUER, AUDIENCE = "https://issuer.bench", "https://ssegate.bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args(argv)
    key = RSAKey.generate_key(2048, parameters={"kid": "k", "alg": "RS256"})
    rules = JwtRules(ISSUER, AUDIENCE, ("RS256",))
    guard = JwtGuard(
        "bench", rules, key_set([key.as_dict(private=False)], ("RS256",)), CredentialSources()
    )
    step = RouteGuard(guard, frozenset({"read"}))
    expires = int(time.time()) + 3600
    requests = [
        Request(
            "GET",
            "/f/t",
            "",
            [
                (
                    "authorization",
                    "Bearer "
                    + jwt.encode(
                        {"alg": "RS256", "kid": "k"},
                        {
                            "iss": ISSUER,
                            "aud": AUDIENCE,
                            "sub": f"user-{i}",
                            "exp": expires,
                            "scope": "read",
                        },
                        key,
                    ),
                )
            ],
            "1.1",
            True,
            "127.0.0.1",
        )
        for i in range(args.tokens)
    ]
    missing = Rejection(HTTPStatus.NOT_FOUND, "")
    started = time.perf_counter()
    for request in requests:
        authorize(step, request, lambda: missing)
    first = (time.perf_counter() - started) / len(requests) * 1e6
    started = time.perf_counter()
    for request in requests:
        authorize(step, request, lambda: missing)
    again = (time.perf_counter() - started) / len(requests) * 1e6
    print(json.dumps({"new_token_us": round(first, 1), "cached_token_us": round(again, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
