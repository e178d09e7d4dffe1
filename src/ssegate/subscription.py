"""The subscription step: which stream a request gets, from where, or why it gets none.

A matched route and the request go in (path parameters, `Last-Event-ID`, `?since=`, and
once the guard lands the caller's identity); out comes a `Subscription` (topic, group key,
start) or a `Rejection`. Checked in this order, the first failure answering:

1. the method: GET only (405, `Allow: GET, OPTIONS`);
2. `Last-Event-ID` (header, else `?lastEventId=`): over 254 bytes is 400; an id that does
   not decode starts per the route's policy and is counted, never a silent full replay;
3. the topic and filters from the parameters: 404 when they name no valid topic;
4. `?since=` (ignored when the client resumes by id): 400 when it is no time.

Whether the gateway has room for the stream is admission's question (`ssegate.admission`),
asked next. Sans-I/O: values in, values out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http import HTTPStatus
from urllib.parse import unquote

from ssegate.errors import RequestError
from ssegate.fanout.group import GroupKey
from ssegate.fanout.start import StartAt
from ssegate.http.request import Request, decode_query_value
from ssegate.kafka.eventid import MAX_ID_BYTES, EventIdError, parse_event_id
from ssegate.rejection import Rejection
from ssegate.routing import CompiledRoute, ExpressionError, TopicNameError

logger = logging.getLogger("ssegate.subscription")

STREAM_METHODS = "GET, OPTIONS"


class SinceError(RequestError):
    """A `?since=` that is not a time the gateway can start from (answer 400)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a stream request resolved to."""

    route: CompiledRoute
    topic: str
    key: GroupKey
    start: StartAt
    client_ip: str


def subscribe(
    route: CompiledRoute,
    params: dict[str, str],
    request: Request,
    guarded: Mapping[str, str] | None = None,
) -> Subscription | Rejection:
    """The subscription `request` asks for on `route`, or why it cannot have one;
    `guarded` holds the caller's identity values when a guard let it in."""
    if request.method != "GET":
        return Rejection(
            HTTPStatus.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed on an event stream; use GET",
            (("Allow", STREAM_METHODS),),
        )
    last_event_id, id_bytes = last_event_id_of(request)
    if id_bytes > MAX_ID_BYTES:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            f"Last-Event-ID is {id_bytes} bytes; the limit is {MAX_ID_BYTES}",
        )
    values: Mapping[str, str] = {**params, **guarded} if guarded else params
    if route.client_certificate:
        if request.tls_client is None:
            return Rejection(
                HTTPStatus.FORBIDDEN, "this stream needs a client certificate (mutual TLS)"
            )
        values = {**values, **request.tls_client}
    try:
        topic, filters = route.resolve(values)
    except TopicNameError as exc:
        return Rejection(HTTPStatus.NOT_FOUND, str(exc))
    except ExpressionError as exc:  # a certificate field this client's certificate lacks
        return Rejection(HTTPStatus.FORBIDDEN, f"the client certificate has {exc.message}")
    start = start_at(route, last_event_id)
    if not start.resumed:
        since = request.query_param("since")
        if since is not None:
            try:
                start = replace(start, since_ms=parse_since(unquote(since)))
            except SinceError as exc:
                return Rejection(HTTPStatus.BAD_REQUEST, f"since: {exc}")
    key = GroupKey(route.path, filters, route.id_form, route.deliver_invalid)
    return Subscription(route, topic, key, start, request.client_ip)


def start_at(route: CompiledRoute, last_event_id: str | None) -> StartAt:
    """Where a stream with this id (or none) begins on `route`."""
    if not last_event_id:
        return StartAt(route.start)
    try:
        parsed = parse_event_id(last_event_id)
    except EventIdError as exc:
        logger.info("Last-Event-ID does not decode (%s); starting %s", exc, route.start.value)
        return StartAt(route.start, invalid=True)
    if parsed.compact is not None:
        return StartAt(route.start, compact=parsed.compact)
    return StartAt(route.start, parsed.progress, live=parsed.live)


def last_event_id_of(request: Request) -> tuple[str | None, int]:
    """The id a client resumes from, and its size in the bytes the client sent.

    The header wins (even empty). Header values arrive as latin-1 text, byte for byte; a
    browser sends the id's UTF-8 (WHATWG P-18), so the bytes are decoded again as UTF-8.
    The query parameter is percent-decoded as UTF-8 when it holds escapes (Zilla's rule).
    """
    header = request.header("last-event-id")
    if header is not None:
        sent = header.encode("latin-1")
        return sent.decode("utf-8", "replace"), len(sent)
    raw = request.query_param("lastEventId")
    if raw is None:
        return None, 0
    decoded = decode_query_value(raw)
    return decoded, len(decoded.encode("utf-8", "surrogatepass"))


def parse_since(text: str) -> int:
    """`?since=`: epoch milliseconds, or an ISO-8601 time (UTC when it names no zone).

    Raises SinceError (a ValueError) saying why when `text` is neither.
    """
    if text.isascii() and text.isdigit():
        millis = int(text)
        if millis > 2**63 - 1:
            raise SinceError(f"{text[:40]!r} is too far in the future")
        return millis
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SinceError(
            f"expected epoch milliseconds or an ISO-8601 time, got {text[:60]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return max(int(moment.timestamp() * 1000), 0)
    except (OverflowError, OSError, ValueError):
        raise SinceError(f"{text[:60]!r} is out of range") from None
