"""Record filters: templates compiled from a route, resolved per request, matched per record.

Semantics (Zilla's sse-kafka filters, `reference/zilla-sse.md` §4.2):

1. A route's `filters` is a list of items; a record passes when ANY item matches.
   No items means every record passes.
2. An item matches when ALL its conditions hold: the record's key equals `key` (when the
   item has one) and, for each `headers` entry, the record has a header of that name with
   exactly that value. A record may repeat a header name; any occurrence counts.
3. Comparison is on bytes: configured strings are encoded as UTF-8, nothing is trimmed or
   case-folded. A record with a null key never matches an item with a key (not even `""`).
4. `value` conditions (ssegate's, beyond Zilla) compare a field of the record's JSON value
   (`ssegate.routing.valuepath`) with a text: a record whose value is not JSON, or lacks the
   field, does not match. The value is decoded at most once per record (the caller's
   `document`), and only when an item with value conditions is reached.

Resolved filters are canonical: items are deduplicated, an item implied by a looser one is
dropped (`[{key: a}, {key: a, headers: {x: 1}}]` is `[{key: a}]`), an item with no
conditions makes the whole list empty (everything passes), and the rest is sorted. Two
requests whose filters mean the same thing therefore get equal, hashable values, which the
fan-out uses as a subscription group's key. Sans-I/O: no logging, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssegate.routing.expressions import Expression, ExpressionError
from ssegate.routing.valuepath import Step, field_text, parse_path

if TYPE_CHECKING:
    from ssegate.config.schema import FilterConfig

__all__ = [
    "FilterItemTemplate",
    "FilterTemplate",
    "ResolvedFilter",
    "ResolvedFilters",
    "canonicalize",
    "index_keys",
    "matches",
]


@dataclass(frozen=True, slots=True)
class ResolvedFilter:
    """One item: an optional key and (name, value) header pairs, all of which must match.

    Headers are stored sorted and without duplicates, whatever order they are given in.
    """

    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    values: tuple[tuple[tuple[Step, ...], str], ...] = ()  # (path, text) pairs (rule 4)

    def __post_init__(self) -> None:
        normal = tuple(sorted(set(self.headers)))
        if normal != self.headers:
            object.__setattr__(self, "headers", normal)
        values = tuple(sorted(set(self.values), key=repr))
        if values != self.values:
            object.__setattr__(self, "values", values)

    def implies(self, other: ResolvedFilter) -> bool:
        """True when every record `other` lets through, this item lets through too."""
        if self.key is not None and self.key != other.key:
            return False
        return set(self.headers) <= set(other.headers) and set(self.values) <= set(other.values)


ResolvedFilters = tuple[ResolvedFilter, ...]
"""Items in canonical order; the empty tuple lets every record through."""

_MATCH_ALL = ResolvedFilter()


def _order(item: ResolvedFilter) -> tuple[bool, bytes, tuple[tuple[str, bytes], ...], str]:
    return (item.key is not None, item.key or b"", item.headers, repr(item.values))


def canonicalize(items: Iterable[ResolvedFilter]) -> ResolvedFilters:
    """The canonical form of `items` (see the module docstring)."""
    unique = set(items)
    if not unique or _MATCH_ALL in unique:
        return ()
    kept = [
        item
        for item in unique
        if not any(other != item and other.implies(item) for other in unique)
    ]
    return tuple(sorted(kept, key=_order))


def matches(
    filters: ResolvedFilters,
    key: bytes | None,
    headers: Sequence[tuple[str, bytes]] | None,
    document: Callable[[], Any] | None = None,
) -> bool:
    """True when a record with this key and these headers passes `filters`. `document`
    gives the record's decoded JSON value (None when it is not JSON), for value conditions;
    without it they are not evaluated (taken as met)."""
    if not filters:
        return True
    for item in filters:
        if item.key is not None and item.key != key:
            continue
        if item.headers and (not headers or not all(pair in headers for pair in item.headers)):
            continue
        if not item.values or document is None:
            return True
        value = document()
        if value is not None and all(field_text(value, p) == text for p, text in item.values):
            return True
    return False


def index_keys(filters: ResolvedFilters) -> frozenset[bytes] | None:
    """The record keys that can pass, when every item names a key; else None.

    A record whose key is not in the set cannot pass, so the fan-out may index groups by
    key and skip the others without evaluating their filters.
    """
    if not filters:
        return None
    keys: set[bytes] = set()
    for item in filters:
        if item.key is None:
            return None
        keys.add(item.key)
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class FilterItemTemplate:
    """One configured item before resolution."""

    key: Expression | None
    headers: tuple[tuple[str, Expression], ...]
    # (path, expected text, where it is configured within the item)
    values: tuple[tuple[tuple[Step, ...], Expression, tuple[str | int, ...]], ...] = ()

    def resolve(self, params: Mapping[str, str]) -> ResolvedFilter:
        key = None if self.key is None else self.key.resolve(params).encode("utf-8")
        return ResolvedFilter(
            key,
            tuple((name, value.resolve(params).encode("utf-8")) for name, value in self.headers),
            tuple((path, text.resolve(params)) for path, text, _ in self.values),
        )


class FilterTemplate:
    """A route's filters, compiled once; `resolve` gives the canonical filters of a request."""

    __slots__ = ("_static", "items")

    items: tuple[FilterItemTemplate, ...]
    _static: ResolvedFilters | None

    def __init__(self, items: Sequence[FilterItemTemplate]) -> None:
        self.items = tuple(items)
        static = all(
            (item.key is None or item.key.is_literal)
            and all(value.is_literal for _, value in item.headers)
            and all(text.is_literal for _, text, _ in item.values)
            for item in self.items
        )
        self._static = canonicalize(item.resolve({}) for item in self.items) if static else None

    @classmethod
    def compile(cls, items: Sequence[FilterConfig]) -> FilterTemplate:
        """Parse every key and header value; ExpressionError carries the item's location.

        Header names are literal: a name holding `${` is rejected rather than taken as text,
        since it is almost certainly meant as an expression.
        """
        compiled: list[FilterItemTemplate] = []
        for index, item in enumerate(items):
            key = None
            if item.key is not None:
                key = _parse(item.key, (index, "key"))
            headers: list[tuple[str, Expression]] = []
            for name, value in item.headers.items():
                if "${" in name:
                    raise ExpressionError(
                        f"header name {name!r} cannot hold an expression (only values can)",
                        location=(index, "headers"),
                    )
                headers.append((name, _parse(value, (index, "headers", name))))
            values: list[tuple[tuple[Step, ...], Expression, tuple[str | int, ...]]] = []
            conditions = item.value if isinstance(item.value, list) else [item.value]
            for number, condition in enumerate(c for c in conditions if c is not None):
                where = (
                    (index, "value", number) if isinstance(item.value, list) else (index, "value")
                )
                try:
                    path = parse_path(condition.path)
                except ValueError as exc:
                    raise ExpressionError(str(exc), location=(*where, "path")) from None
                equals = _parse(condition.equals, (*where, "equals"))
                values.append((path, equals, (*where[1:], "equals")))
            compiled.append(FilterItemTemplate(key, tuple(headers), tuple(values)))
        return cls(compiled)

    def expressions(self) -> Iterator[tuple[tuple[str | int, ...], Expression]]:
        """Every expression with its location, in declaration order."""
        for index, item in enumerate(self.items):
            if item.key is not None:
                yield (index, "key"), item.key
            for name, value in item.headers:
                yield (index, "headers", name), value
            for _, text, where in item.values:
                yield (index, *where), text

    @property
    def references(self) -> frozenset[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for _, expression in self.expressions():
            found |= expression.references
        return frozenset(found)

    @property
    def is_literal(self) -> bool:
        return self._static is not None

    def resolve(self, params: Mapping[str, str]) -> ResolvedFilters:
        """The canonical filters for these path parameters (ExpressionError if one lacks)."""
        if self._static is not None:
            return self._static
        return canonicalize(item.resolve(params) for item in self.items)

    def __repr__(self) -> str:
        return f"FilterTemplate({len(self.items)} items)"


def _parse(text: str, location: tuple[str | int, ...]) -> Expression:
    try:
        return Expression.parse(text)
    except ExpressionError as exc:
        raise ExpressionError(exc.message, expression=exc.expression, location=location) from exc
