"""Filters: compilation, canonical resolved form, the matching truth table, index keys."""

from __future__ import annotations

import pytest

from ssegate.config.schema import FilterConfig
from ssegate.routing import (
    ExpressionError,
    FilterTemplate,
    ResolvedFilter,
    canonicalize,
    index_keys,
    matches,
)

F = ResolvedFilter


def test_resolve_demo_filters() -> None:
    template = FilterTemplate.compile(
        [FilterConfig(key="${params.symbol}", headers={"exchange": "${params.exchange}"})]
    )
    assert not template.is_literal
    assert template.references == frozenset({("params", "symbol"), ("params", "exchange")})
    assert template.resolve({"symbol": "BRK/A", "exchange": "NYSE"}) == (
        F(b"BRK/A", (("exchange", b"NYSE"),)),
    )


def test_values_are_utf8_bytes_exactly() -> None:
    template = FilterTemplate.compile([FilterConfig(key=" café ", headers={"Tag": "Ä"})])
    assert template.is_literal
    assert template.resolve({}) == (F(" café ".encode(), (("Tag", "Ä".encode()),)),)


def test_no_filters_and_empty_items_match_everything() -> None:
    assert FilterTemplate.compile([]).resolve({}) == ()
    assert FilterTemplate.compile([FilterConfig(key="a"), FilterConfig()]).resolve({}) == ()


def test_headers_are_sorted_and_deduplicated() -> None:
    one = F(b"k", (("b", b"2"), ("a", b"1"), ("b", b"2")))
    assert one.headers == (("a", b"1"), ("b", b"2"))
    assert one == F(b"k", (("a", b"1"), ("b", b"2")))
    assert hash(one) == hash(F(b"k", (("a", b"1"), ("b", b"2"))))


def test_same_filters_in_another_order_are_equal_and_hash_alike() -> None:
    first = FilterTemplate.compile(
        [
            FilterConfig(key="${params.s}", headers={"x": "1", "y": "${params.e}"}),
            FilterConfig(key="b"),
            FilterConfig(headers={"only": "header"}),
        ]
    )
    second = FilterTemplate.compile(
        [
            FilterConfig(headers={"only": "header"}),
            FilterConfig(key="b"),
            FilterConfig(key="b"),  # a duplicate
            FilterConfig(key="${params.s}", headers={"y": "${params.e}", "x": "1"}),
        ]
    )
    a = first.resolve({"s": "a", "e": "E"})
    b = second.resolve({"s": "a", "e": "E"})
    assert a == b
    assert hash(a) == hash(b)
    assert {a: "group"}[b] == "group"
    # Canonical order: items without a key first, then by key, then by headers.
    assert a == (
        F(None, (("only", b"header"),)),
        F(b"a", (("x", b"1"), ("y", b"E"))),
        F(b"b"),
    )


def test_items_implied_by_looser_ones_are_dropped() -> None:
    assert canonicalize([F(b"a"), F(b"a", (("x", b"1"),))]) == (F(b"a"),)
    assert canonicalize([F(None, (("x", b"1"),)), F(b"a", (("x", b"1"), ("y", b"2")))]) == (
        F(None, (("x", b"1"),)),
    )
    # Not implied: different key, or a header the looser item lacks.
    assert canonicalize([F(b"a"), F(b"b", (("x", b"1"),))]) == (F(b"a"), F(b"b", (("x", b"1"),)))
    assert canonicalize([F(b"a", (("x", b"1"),)), F(b"a", (("x", b"2"),))]) == (
        F(b"a", (("x", b"1"),)),
        F(b"a", (("x", b"2"),)),
    )


def test_canonicalize_is_idempotent() -> None:
    items = [F(b"z"), F(None, (("h", b"v"),)), F(b"a", (("h", b"v"),))]
    once = canonicalize(items)
    assert canonicalize(once) == once
    assert canonicalize(reversed(items)) == once


KEY_ONLY = (F(b"BRK"),)
HEADERS_ONLY = (F(None, (("exchange", b"NYSE"), ("tier", b"1"))),)
BOTH = (F(b"BRK", (("exchange", b"NYSE"),)),)
SEVERAL = canonicalize([F(b"BRK"), F(b"AAPL", (("exchange", b"NASDAQ"),))])
EMPTY_KEY = (F(b""),)


@pytest.mark.parametrize(
    ("filters", "key", "headers", "expected"),
    [
        ((), None, None, True),
        ((), b"x", [("a", b"b")], True),
        (KEY_ONLY, b"BRK", None, True),
        (KEY_ONLY, b"BRK", [("exchange", b"NYSE")], True),
        (KEY_ONLY, b"brk", None, False),  # exact bytes: no case folding
        (KEY_ONLY, b"BRK ", None, False),  # no trimming
        (KEY_ONLY, None, None, False),  # a null key never matches a key
        (EMPTY_KEY, None, None, False),  # not even the empty key
        (EMPTY_KEY, b"", None, True),
        (HEADERS_ONLY, None, [("tier", b"1"), ("exchange", b"NYSE")], True),
        (HEADERS_ONLY, b"any", [("exchange", b"NYSE"), ("x", b"y"), ("tier", b"1")], True),
        (HEADERS_ONLY, None, [("exchange", b"NYSE")], False),  # all headers are needed
        (HEADERS_ONLY, None, None, False),
        (HEADERS_ONLY, None, [], False),
        (HEADERS_ONLY, None, [("Exchange", b"NYSE"), ("tier", b"1")], False),  # names exact
        (HEADERS_ONLY, None, [("exchange", None), ("tier", b"1")], False),  # null value
        # A repeated header name: any occurrence with the exact value counts.
        (HEADERS_ONLY, None, [("exchange", b"LSE"), ("tier", b"1"), ("exchange", b"NYSE")], True),
        (HEADERS_ONLY, None, [("exchange", b"LSE"), ("tier", b"1"), ("exchange", b"X")], False),
        (BOTH, b"BRK", [("exchange", b"NYSE")], True),
        (BOTH, b"BRK", [("exchange", b"LSE")], False),
        (BOTH, b"AAPL", [("exchange", b"NYSE")], False),
        (BOTH, None, [("exchange", b"NYSE")], False),
        (SEVERAL, b"BRK", None, True),
        (SEVERAL, b"AAPL", [("exchange", b"NASDAQ")], True),
        (SEVERAL, b"AAPL", [("exchange", b"NYSE")], False),
        (SEVERAL, b"AAPL", None, False),
        (SEVERAL, b"MSFT", [("exchange", b"NASDAQ")], False),
    ],
)
def test_matches(
    filters: tuple[ResolvedFilter, ...],
    key: bytes | None,
    headers: list[tuple[str, bytes]] | None,
    expected: bool,
) -> None:
    assert matches(filters, key, headers) is expected


def test_index_keys() -> None:
    assert index_keys(()) is None
    assert index_keys(KEY_ONLY) == frozenset({b"BRK"})
    assert index_keys(BOTH) == frozenset({b"BRK"})
    assert index_keys(SEVERAL) == frozenset({b"BRK", b"AAPL"})
    assert index_keys(HEADERS_ONLY) is None
    assert index_keys(canonicalize([F(b"a"), F(None, (("h", b"v"),))])) is None


def test_expressions_with_locations() -> None:
    template = FilterTemplate.compile(
        [FilterConfig(key="k"), FilterConfig(key="${params.a}", headers={"h": "${params.b}"})]
    )
    assert [(where, e.text) for where, e in template.expressions()] == [
        ((0, "key"), "k"),
        ((1, "key"), "${params.a}"),
        ((1, "headers", "h"), "${params.b}"),
    ]


def test_compile_errors_carry_the_location() -> None:
    with pytest.raises(ExpressionError) as caught:
        FilterTemplate.compile([FilterConfig(), FilterConfig(headers={"tag": "${params"})])
    assert caught.value.location == (1, "headers", "tag")
    with pytest.raises(ExpressionError) as caught:
        FilterTemplate.compile([FilterConfig(headers={"${params.a}": "x"})])
    assert caught.value.location == (0, "headers")
    assert str(caught.value) == (
        "header name '${params.a}' cannot hold an expression (only values can)"
    )


def test_resolve_with_a_missing_parameter() -> None:
    template = FilterTemplate.compile([FilterConfig(key="${params.a}")])
    with pytest.raises(ExpressionError, match=r"no value for \$\{params.a\}"):
        template.resolve({})
