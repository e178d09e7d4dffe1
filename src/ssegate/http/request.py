"""A parsed HTTP request, as the application sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from ssegate.observe.logs import redact


@dataclass(slots=True)
class Request:
    """Method, target and headers (names lowercased, values latin-1 decoded)."""

    method: str
    path: str  # raw, percent-encoded, without the query
    query: str  # raw, without the leading '?'
    headers: list[tuple[str, str]]
    http_version: str
    keep_alive: bool
    client_ip: str
    scheme: str = "http"  # "https" over TLS
    # The verified client certificate's `tls.client.<field>` values (mutual TLS), or None.
    tls_client: Mapping[str, str] | None = None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (lowercase), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def query_param(self, name: str) -> str | None:
        """The raw (undecoded) value of the first `name=` in the query, or None."""
        if not self.query:
            return None
        for part in self.query.split("&"):
            key, sep, value = part.partition("=")
            if key == name:
                return value if sep else ""
        return None

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def loggable_target(self) -> str:
        """The target with any `access_token` value redacted, for logs."""
        return redact(self.target)


def decode_query_value(value: str) -> str:
    """Form-decode a query value when it holds percent escapes (Zilla decodes only then)."""
    return unquote_plus(value) if "%" in value else value
