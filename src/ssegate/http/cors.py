"""Cross-origin policy for streams and preflights, as Zilla's http `access-control`.

same-origin (default): a request whose `Origin` is not this server's own origin
(scheme://host from the `Host` header, default ports normalised) gets 403; requests without
`Origin` (curl, same-origin navigations) pass.
cross-origin: an `Origin` passes when no allow-list is configured or it is on the list.
Responses then carry `Access-Control-Allow-Origin`: `*`, or the origin itself when an
allow-list or credentials are configured (browsers refuse `*` with credentials).
"""

from __future__ import annotations

from dataclasses import dataclass

from ssegate.config.schema import CorsConfig

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` lowercased, with the scheme's default port removed."""
    origin = origin.strip().lower().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    if not sep:
        return origin
    host, colon, port = rest.rpartition(":")
    if colon and port == _DEFAULT_PORTS.get(scheme) and "]" not in port:
        rest = host
    return f"{scheme}://{rest}"


@dataclass(frozen=True, slots=True)
class CorsDecision:
    allowed: bool
    headers: list[tuple[str, str]]


class CorsPolicy:
    def __init__(self, config: CorsConfig) -> None:
        self.cross_origin = config.policy == "cross-origin"
        allow = config.allow
        self.origins = (
            None
            if allow.origins is None or "*" in allow.origins
            else {normalise_origin(o) for o in allow.origins}
        )
        self.credentials = allow.credentials
        self.methods = allow.methods
        self.allow_headers = allow.headers
        self.max_age = None if config.max_age is None else int(config.max_age)
        self.expose = config.expose_headers

    def check(self, origin: str | None, host: str | None, scheme: str = "http") -> CorsDecision:
        """Whether a request may proceed, and the headers its response carries."""
        if not self.cross_origin:
            if origin is None or (
                host is not None
                and normalise_origin(origin) == normalise_origin(f"{scheme}://{host}")
            ):
                return CorsDecision(True, [])
            return CorsDecision(False, [])
        if (
            origin is not None
            and self.origins is not None
            and normalise_origin(origin) not in self.origins
        ):
            return CorsDecision(False, [])
        headers = [("Access-Control-Allow-Origin", self._allow_origin(origin))]
        if self._echoes(origin):
            headers.append(("Vary", "Origin"))
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        if self.expose:
            headers.append(("Access-Control-Expose-Headers", ", ".join(self.expose)))
        return CorsDecision(True, headers)

    def _echoes(self, origin: str | None) -> bool:
        return origin is not None and (self.origins is not None or self.credentials)

    def _allow_origin(self, origin: str | None) -> str:
        return origin if origin is not None and self._echoes(origin) else "*"

    def preflight(
        self,
        origin: str | None,
        host: str | None,
        request_method: str | None,
        request_headers: str | None,
        scheme: str = "http",
    ) -> CorsDecision:
        """The answer to an OPTIONS preflight: 204 with these headers, or 403."""
        decision = self.check(origin, host, scheme)
        if not decision.allowed or not self.cross_origin:
            return decision
        if (
            request_method is not None
            and self.methods is not None
            and request_method.upper() not in {m.upper() for m in self.methods}
        ):
            return CorsDecision(False, [])
        headers = [h for h in decision.headers if h[0] != "Access-Control-Expose-Headers"]
        if request_method is not None:
            methods = ", ".join(self.methods) if self.methods is not None else request_method
            headers.append(("Access-Control-Allow-Methods", methods))
        if request_headers:
            allowed = (
                ", ".join(self.allow_headers) if self.allow_headers is not None else request_headers
            )
            headers.append(("Access-Control-Allow-Headers", allowed))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        return CorsDecision(True, headers)
