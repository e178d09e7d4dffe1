"""Expressions: literal text, ${namespace.name} references, the $${ escape, resolution."""

from __future__ import annotations

import pytest

from ssegate.routing import Expression, ExpressionError


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("events", ("events",)),
        ("", ()),
        ("${params.symbol}", (("params", "symbol"),)),
        (
            "prefix-${params.a}-${params.b}!",
            ("prefix-", ("params", "a"), "-", ("params", "b"), "!"),
        ),
        ("$${params.a}", ("${params.a}",)),
        ("a$${b}c", ("a${b}c",)),
        ("$$${x}", ("$${x}",)),  # "$" then the escape
        ("$${${params.a}", ("${", ("params", "a"))),
        ("cost: $5 {not} }", ("cost: $5 {not} }",)),
        ("$", ("$",)),
        ("$$", ("$$",)),
        ("${guard.identity}", (("guard", "identity"),)),
        ("${_a1.b_2}", (("_a1", "b_2"),)),
    ],
)
def test_parse(text: str, parts: tuple[object, ...]) -> None:
    expression = Expression.parse(text)
    assert expression.parts == parts
    assert expression.text == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "${params.x",
            "malformed expression '${params.x' (no closing '}'; write $${ for a literal ${)",
        ),
        ("a${", "malformed expression '${' (no closing '}'; write $${ for a literal ${)"),
        (
            "${params}",
            "malformed expression '${params}' (expected ${namespace.name}; write $${ for a "
            "literal ${)",
        ),
        (
            "${}",
            "malformed expression '${}' (expected ${namespace.name}; write $${ for a literal ${)",
        ),
        (
            "${params.}",
            "malformed expression '${params.}' (expected ${namespace.name}; write $${ for a "
            "literal ${)",
        ),
        (
            "${params.a..b}",
            "malformed expression '${params.a..b}' (expected ${namespace.name}; write $${ for a "
            "literal ${)",
        ),
        (
            "${ params.a }",
            "malformed expression '${ params.a }' (expected ${namespace.name}; write $${ for a "
            "literal ${)",
        ),
        (
            "${params.1a}",
            "malformed expression '${params.1a}' (expected ${namespace.name}; write $${ for a "
            "literal ${)",
        ),
        (
            "x${a${b.c}}",
            "malformed expression '${a${b.c}' (expected ${namespace.name}; write $${ for a "
            "literal ${)",
        ),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        Expression.parse(text)
    assert str(caught.value) == message
    assert caught.value.expression in text


def test_references_and_is_literal() -> None:
    expression = Expression.parse("${params.a}-${params.b}-${params.a}-${guard.identity}")
    assert expression.references == frozenset(
        {("params", "a"), ("params", "b"), ("guard", "identity")}
    )
    assert not expression.is_literal
    literal = Expression.parse("plain $${text}")
    assert literal.is_literal
    assert literal.references == frozenset()
    assert literal.resolve({}) == "plain ${text}"


def test_resolve() -> None:
    expression = Expression.parse("${params.a}.${params.b}")
    assert expression.resolve({"a": "x", "b": "${y}"}) == "x.${y}"  # values are not re-parsed


def test_resolve_missing_parameter_is_an_expression_error_not_key_error() -> None:
    with pytest.raises(ExpressionError) as caught:
        Expression.parse("${params.a}").resolve({})
    assert str(caught.value) == "no value for ${params.a}"


def test_resolve_other_namespace_by_its_full_name() -> None:
    expression = Expression.parse("${tls.client.cn}/${params.a}")
    assert expression.references == {("tls", "client.cn"), ("params", "a")}
    assert expression.resolve({"a": "x", "tls.client.cn": "alice"}) == "alice/x"
    with pytest.raises(ExpressionError) as caught:
        expression.resolve({"a": "x", "client.cn": "alice"})  # never a path parameter's
    assert str(caught.value) == "no value for ${tls.client.cn}"


@pytest.mark.parametrize("value", ["", "a", "${x}", "$${x}", "$", "a$", "${params.a}", "}{$"])
def test_literal_round_trips(value: str) -> None:
    literal = Expression.literal(value)
    assert literal.resolve({}) == value
    assert Expression.parse(literal.text).resolve({}) == value


def test_equality() -> None:
    assert Expression.parse("a$${b") == Expression.parse("a$${b")
    assert hash(Expression.parse("${params.a}")) == hash(Expression.parse("${params.a}"))
    assert Expression.parse("${params.a}") != Expression.parse("${params.b}")
    assert repr(Expression.parse("x")) == "Expression('x')"
