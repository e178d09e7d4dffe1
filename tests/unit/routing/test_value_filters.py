"""Value filters: paths into a record's JSON value, compared as text, with parameters."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ssegate.config.schema import FilterConfig, ValueMatch
from ssegate.routing import ExpressionError, FilterTemplate, ResolvedFilter, matches
from ssegate.routing.valuepath import field_text, format_path, parse_path
from ssegate.sources.record import Record

QUOTE = {"symbol": "AAPL", "price": 189.5, "seq": 7, "live": True, "note": None,
         "venue": {"code": "XNAS", "name's": "Nasdaq"}, "tags": ["tech", 3]}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "steps", "text"),
    [
        ("$.symbol", ("symbol",), "AAPL"),
        ("$.price", ("price",), "189.5"),
        ("$.seq", ("seq",), "7"),
        ("$.live", ("live",), "true"),
        ("$.note", ("note",), "null"),
        ("$.venue.code", ("venue", "code"), "XNAS"),
        ("$.venue['name''s']", None, None),
        ("$['venue']['code']", ("venue", "code"), "XNAS"),
        ("$.tags[0]", ("tags", 0), "tech"),
        ("$.tags[1]", ("tags", 1), "3"),
        ("$.tags", ("tags",), '["tech",3]'),
        ("$.venue", ("venue",), '{"code":"XNAS","name\'s":"Nasdaq"}'),
        ("$.tags[2]", ("tags", 2), None),
        ("$.missing", ("missing",), None),
        ("$.symbol.deeper", ("symbol", "deeper"), None),
        ("$.venue[0]", ("venue", 0), None),
        ("$.tags.x", ("tags", "x"), None),
    ],
)
def test_paths_and_the_text_they_compare(
    path: str, steps: tuple[str | int, ...] | None, text: str | None
) -> None:
    if steps is None:
        with pytest.raises(ValueError, match="cannot read the path"):
            parse_path(path)
        return
    assert parse_path(path) == steps
    assert field_text(QUOTE, steps) == text


@pytest.mark.parametrize("path", ["symbol", "$", "$.", "$..a", "$.a[-1]", "$.a[x]", "$ .a"])
def test_malformed_paths(path: str) -> None:
    with pytest.raises(ValueError, match=r"value path|cannot read"):
        parse_path(path)


def test_format_path() -> None:
    assert format_path(("venue", "code", 0)) == "$.venue.code[0]"


def document(value: Any) -> Any:
    return lambda: value


def test_every_condition_of_an_item_must_hold_and_any_item_may() -> None:
    template = FilterTemplate.compile(
        [
            FilterConfig(
                value=[
                    ValueMatch(path="$.symbol", equals="${params.symbol}"),
                    ValueMatch(path="$.venue.code", equals="XNAS"),
                ]
            ),
            FilterConfig(key="${params.symbol}"),
        ]
    )
    filters = template.resolve({"symbol": "AAPL"})
    assert matches(filters, None, None, document(QUOTE))
    assert not matches(filters, None, None, document({**QUOTE, "venue": {"code": "XNYS"}}))
    assert matches(filters, b"AAPL", None, document({"symbol": "MSFT"}))  # the key item
    assert not matches(filters, None, None, document(None))  # not JSON
    assert not matches(template.resolve({"symbol": "MSFT"}), None, None, document(QUOTE))


def test_value_conditions_are_not_evaluated_without_a_document() -> None:
    filters = FilterTemplate.compile(
        [FilterConfig(key="k", value=ValueMatch(path="$.a", equals="1"))]
    ).resolve({})
    assert matches(filters, b"k", None, None)  # an invalid record on an `event` route
    assert not matches(filters, b"other", None, None)


def test_values_take_part_in_the_canonical_form() -> None:
    loose = FilterConfig(value=ValueMatch(path="$.a", equals="1"))
    tight = FilterConfig(
        value=[ValueMatch(path="$.b", equals="2"), ValueMatch(path="$.a", equals="1")]
    )
    one = FilterTemplate.compile([loose, tight]).resolve({})
    assert one == (ResolvedFilter(values=((("a",), "1"),)),)  # the tight item is implied
    swapped = FilterTemplate.compile(
        [
            FilterConfig(
                value=[ValueMatch(path="$.a", equals="1"), ValueMatch(path="$.b", equals="2")]
            )
        ]
    ).resolve({})
    again = FilterTemplate.compile([tight]).resolve({})
    assert swapped == again
    assert hash(swapped) == hash(again)


def test_locations_of_value_expressions_and_errors() -> None:
    template = FilterTemplate.compile(
        [
            FilterConfig(value=ValueMatch(path="$.a", equals="${params.x}")),
            FilterConfig(value=[ValueMatch(path="$.b", equals="${params.y}")]),
        ]
    )
    assert [where for where, _ in template.expressions()] == [
        (0, "value", "equals"),
        (1, "value", 0, "equals"),
    ]
    with pytest.raises(ExpressionError) as caught:
        FilterTemplate.compile([FilterConfig(value=[ValueMatch(path="a", equals="1")])])
    assert caught.value.location == (0, "value", 0, "path")
    assert "starts with $" in str(caught.value)


def test_a_record_decodes_its_value_once() -> None:
    record = Record(0, 0, None, msgspec.json.encode(QUOTE))
    first = record.document()
    assert first == QUOTE
    assert record.document() is first
    assert Record(0, 1, None, b"{not json").document() is None
    assert Record(0, 2, b"k", None).document() is None
