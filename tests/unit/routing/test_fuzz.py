"""Invariants under arbitrary input: parsers return a value or raise their declared error."""

from __future__ import annotations

import os
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssegate.routing import (
    Expression,
    ExpressionError,
    PathTemplate,
    ResolvedFilter,
    TemplateError,
    canonicalize,
    matches,
)

# The default keeps this file under 10 s; SSEGATE_FUZZ_SCALE=100 runs the 10^5 bar.
SCALE = float(os.environ.get("SSEGATE_FUZZ_SCALE", "1"))


def _examples(n: int) -> settings:
    return settings(
        max_examples=int(n * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


# Text biased towards the characters the grammars care about.
GRAMMAR_TEXT = st.text(alphabet=st.sampled_from("/{}$%.:_-aZ9 é\udcff2Ff"), max_size=30)
ANY_TEXT = st.one_of(st.text(max_size=40), GRAMMAR_TEXT)


@_examples(700)
@given(template=ANY_TEXT, path=ANY_TEXT)
def test_path_template_raises_only_template_error(template: str, path: str) -> None:
    try:
        compiled = PathTemplate(template)
    except TemplateError:
        return
    found = compiled.match(path)
    assert found is None or set(found) == set(compiled.params)
    # The template text itself, when it has no parameters, matches itself.
    if not compiled.params:
        assert compiled.match(template) == {}


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
LITERAL = st.text(alphabet=st.sampled_from("abcXYZ019-._~"), min_size=1, max_size=5)


@_examples(150)
@given(
    segments=st.lists(
        st.tuples(st.one_of(st.none(), LITERAL), st.booleans(), st.one_of(st.none(), LITERAL)),
        min_size=1,
        max_size=5,
    ),
    names=st.lists(NAMES, min_size=5, max_size=5, unique=True),
    values=st.lists(st.text(min_size=1, max_size=8), min_size=5, max_size=5),
)
def test_captured_values_round_trip_through_percent_encoding(
    segments: list[tuple[str | None, bool, str | None]], names: list[str], values: list[str]
) -> None:
    template: list[str] = []
    path: list[str] = []
    expected: dict[str, str] = {}
    for i, (prefix, has_param, suffix) in enumerate(segments):
        if not has_param and not (prefix or suffix):
            prefix = "s"
        part_t = prefix or ""
        part_p = prefix or ""
        if has_param:
            part_t += "{" + names[i] + "}"
            value = values[i].encode("utf-8", "replace").decode("utf-8")
            part_p += quote(value, safe="")
            expected[names[i]] = value
        part_t += suffix or ""
        part_p += suffix or ""
        template.append(part_t)
        path.append(part_p)
    compiled = PathTemplate("/" + "/".join(template))
    assert compiled.match("/" + "/".join(path)) == expected


@_examples(1000)
@given(text=ANY_TEXT)
def test_expression_parse_raises_only_expression_error(text: str) -> None:
    try:
        expression = Expression.parse(text)
    except ExpressionError:
        assert "${" in text
        return
    params = {name: "v" for _, name in expression.references}
    if all(namespace == "params" for namespace, _ in expression.references):
        assert isinstance(expression.resolve(params), str)
    if "$" not in text:
        assert expression.is_literal
        assert expression.resolve({}) == text


@_examples(1000)
@given(value=ANY_TEXT)
def test_literal_expressions_read_back_literally(value: str) -> None:
    assert Expression.parse(Expression.literal(value).text).resolve({}) == value


ITEMS = st.lists(
    st.builds(
        ResolvedFilter,
        key=st.one_of(st.none(), st.sampled_from([b"", b"a", b"b"])),
        headers=st.lists(
            st.tuples(st.sampled_from(["x", "y"]), st.sampled_from([b"1", b"2"])), max_size=3
        ).map(tuple),
    ),
    max_size=5,
)
RECORD_HEADERS = st.one_of(
    st.none(),
    st.lists(
        st.tuples(st.sampled_from(["x", "y", "z"]), st.sampled_from([b"1", b"2"])), max_size=4
    ),
)


@_examples(200)
@given(
    items=ITEMS,
    key=st.one_of(st.none(), st.sampled_from([b"", b"a", b"b"])),
    headers=RECORD_HEADERS,
    data=st.data(),
)
def test_canonical_filters_mean_what_the_items_mean(
    items: list[ResolvedFilter],
    key: bytes | None,
    headers: list[tuple[str, bytes]] | None,
    data: st.DataObject,
) -> None:
    canonical = canonicalize(items)
    shuffled = canonicalize(data.draw(st.permutations(items + items[:2])))
    assert canonical == shuffled
    assert hash(canonical) == hash(shuffled)
    assert canonicalize(canonical) == canonical

    def by_definition(item: ResolvedFilter) -> bool:
        if item.key is not None and item.key != key:
            return False
        return all(pair in (headers or []) for pair in item.headers)

    expected = not items or any(by_definition(item) for item in items)
    assert matches(canonical, key, headers) is expected
