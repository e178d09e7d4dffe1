"""A request the gateway will not serve as asked: the HTTP answer, as a value.

The steps that decide (routing, the subscription step, admission) return a `Rejection`
instead of writing an answer, so tests check them directly and the application writes
every one the same way (plain text, the cross-origin headers of the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus


@dataclass(frozen=True, slots=True)
class Rejection:
    """Status, a one-line message for the client, and any headers the status needs."""

    status: HTTPStatus
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def body(self) -> bytes:
        return self.message.encode() + b"\n"

    def __str__(self) -> str:
        return f"{self.status.value} {self.message}"
