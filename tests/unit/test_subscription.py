"""The subscription step: each request's subscription, or its rejection as a value."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from ssegate.config.schema import FilterConfig, RouteConfig
from ssegate.fanout.group import GroupKey
from ssegate.fanout.start import StartAt
from ssegate.http.request import Request
from ssegate.kafka.eventid import CompactProgress, IdForm, encode_compact, encode_progress
from ssegate.rejection import Rejection
from ssegate.routing import StartPolicy
from ssegate.routing.filters import ResolvedFilter, canonicalize
from ssegate.routing.router import compile_route
from ssegate.subscription import SinceError, Subscription, parse_since, subscribe

FIXED = compile_route(0, RouteConfig(path="/prices", topic="prices", start="latest"))
BY_NAME = compile_route(
    1,
    RouteConfig(
        path="/t/{name}/{symbol}",
        topic="${params.name}",
        filters=[FilterConfig(key="${params.symbol}")],
        event_id="key",
    ),
)


def request(
    method: str = "GET",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    client_ip: str = "192.0.2.7",
) -> Request:
    return Request(method, "/x", query, headers or [], "1.1", True, client_ip)


def test_a_plain_request_subscribes_at_the_routes_policy() -> None:
    result = subscribe(FIXED, {}, request())
    assert result == Subscription(
        FIXED,
        "prices",
        GroupKey("/prices", (), IdForm.ETAG),
        StartAt(StartPolicy.LATEST),
        "192.0.2.7",
    )


def test_parameters_name_the_topic_and_the_filters() -> None:
    result = subscribe(BY_NAME, {"name": "quotes", "symbol": "ACME"}, request())
    assert isinstance(result, Subscription)
    assert result.topic == "quotes"
    assert result.key == GroupKey(
        "/t/{name}/{symbol}", canonicalize([ResolvedFilter(key=b"ACME")]), IdForm.KEY
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
def test_only_get_opens_a_stream(method: str) -> None:
    assert subscribe(FIXED, {}, request(method)) == Rejection(
        HTTPStatus.METHOD_NOT_ALLOWED,
        f"{method} is not allowed on an event stream; use GET",
        (("Allow", "GET, OPTIONS"),),
    )


def test_an_id_over_254_bytes_is_refused_in_the_bytes_the_client_sent() -> None:
    # 128 two-byte characters: 128 characters, 256 bytes of UTF-8 (sent as latin-1 text).
    header = ("é" * 128).encode().decode("latin-1")
    assert subscribe(FIXED, {}, request(headers=[("last-event-id", header)])) == Rejection(
        HTTPStatus.BAD_REQUEST, "Last-Event-ID is 256 bytes; the limit is 254"
    )
    at_limit = request(headers=[("last-event-id", "a" * 254)])
    assert isinstance(subscribe(FIXED, {}, at_limit), Subscription)


def test_the_query_id_counts_its_decoded_bytes() -> None:
    result = subscribe(FIXED, {}, request(query="lastEventId=" + "%C3%A9" * 128))
    assert result == Rejection(
        HTTPStatus.BAD_REQUEST, "Last-Event-ID is 256 bytes; the limit is 254"
    )


def test_parameters_that_name_no_valid_topic_are_404() -> None:
    result = subscribe(BY_NAME, {"name": "__consumer_offsets", "symbol": "A"}, request())
    assert result == Rejection(
        HTTPStatus.NOT_FOUND, "'__consumer_offsets' is not a topic this route serves"
    )


def test_a_valid_id_resumes_from_its_positions() -> None:
    text = encode_progress({0: 5, 1: 7})
    result = subscribe(FIXED, {}, request(headers=[("last-event-id", text)]))
    assert isinstance(result, Subscription)
    assert result.start == StartAt(StartPolicy.LATEST, {0: 5, 1: 7})
    assert result.start.resumed


def test_the_header_wins_over_the_query_parameter() -> None:
    header = encode_progress({0: 1})
    query = "lastEventId=" + encode_progress({0: 9})
    result = subscribe(FIXED, {}, request(query=query, headers=[("last-event-id", header)]))
    assert isinstance(result, Subscription)
    assert result.start.positions == {0: 1}


def test_an_id_that_does_not_decode_starts_per_policy_and_is_marked() -> None:
    result = subscribe(FIXED, {}, request(headers=[("last-event-id", "not-an-id")]))
    assert isinstance(result, Subscription)
    assert result.start == StartAt(StartPolicy.LATEST, invalid=True)


def test_since_starts_at_a_time() -> None:
    result = subscribe(FIXED, {}, request(query="since=2024-01-02T03:04:05Z"))
    assert isinstance(result, Subscription)
    assert result.start == StartAt(StartPolicy.LATEST, since_ms=1704164645000)


def test_since_is_ignored_when_the_client_resumes_by_id() -> None:
    header = encode_progress({0: 3})
    result = subscribe(FIXED, {}, request(query="since=0", headers=[("last-event-id", header)]))
    assert isinstance(result, Subscription)
    assert result.start == StartAt(StartPolicy.LATEST, {0: 3})


def test_a_since_that_is_no_time_is_400() -> None:
    assert subscribe(FIXED, {}, request(query="since=yesterday")) == Rejection(
        HTTPStatus.BAD_REQUEST,
        "since: expected epoch milliseconds or an ISO-8601 time, got 'yesterday'",
    )


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("0", 0),
        ("1704164645000", 1704164645000),
        ("2024-01-02T03:04:05", 1704164645000),  # no zone: UTC
        ("2024-01-02T04:04:05+01:00", 1704164645000),
        ("1960-01-01T00:00:00Z", 0),  # before the epoch: the oldest record
    ],
)
def test_parse_since(text: str, millis: int) -> None:
    assert parse_since(text) == millis


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9" * 20, f"{'9' * 20!r} is too far in the future"),
        ("", "expected epoch milliseconds or an ISO-8601 time, got ''"),
        ("-5", "expected epoch milliseconds or an ISO-8601 time, got '-5'"),
    ],
)
def test_parse_since_says_why(text: str, message: str) -> None:
    with pytest.raises(SinceError) as caught:
        parse_since(text)
    assert str(caught.value) == message


def test_a_rejection_body_is_its_message_and_a_line_end() -> None:
    rejection = Rejection(HTTPStatus.NOT_FOUND, "gone")
    assert rejection.body == b"gone\n"
    assert str(rejection) == "404 gone"


def test_a_compact_id_resumes_from_its_time() -> None:
    text = encode_compact(300, 1_700_000_000_000, (4, 12))
    result = subscribe(FIXED, {}, request(headers=[("last-event-id", text)]))
    assert isinstance(result, Subscription)
    assert result.start == StartAt(
        StartPolicy.LATEST, compact=CompactProgress(300, 1_700_000_000_000, (4, 12))
    )


MINE = compile_route(
    2,
    RouteConfig(path="/mine", topic="notes", filters=[FilterConfig(key="${tls.client.cn}")]),
)


def test_the_client_certificate_selects_the_filter_and_the_group() -> None:
    alice = Request(
        "GET", "/mine", "", [], "2", True, "192.0.2.7", "https", {"tls.client.cn": "alice"}
    )
    bob = Request("GET", "/mine", "", [], "2", True, "192.0.2.7", "https", {"tls.client.cn": "bob"})
    first, second = subscribe(MINE, {}, alice), subscribe(MINE, {}, bob)
    assert isinstance(first, Subscription)
    assert isinstance(second, Subscription)
    assert first.key.filters == canonicalize([ResolvedFilter(key=b"alice")])
    assert first.key != second.key


def test_without_a_certificate_or_its_field_the_answer_is_403() -> None:
    none = subscribe(MINE, {}, request())
    assert none == Rejection(
        HTTPStatus.FORBIDDEN, "this stream needs a client certificate (mutual TLS)"
    )
    no_cn = Request("GET", "/mine", "", [], "2", True, "192.0.2.7", "https", {"tls.client.o": "x"})
    assert subscribe(MINE, {}, no_cn) == Rejection(
        HTTPStatus.FORBIDDEN, "the client certificate has no value for ${tls.client.cn}"
    )
