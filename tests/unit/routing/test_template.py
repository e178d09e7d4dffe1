"""Path templates: matching, percent-decoding, segment rules and invalid templates."""

from __future__ import annotations

import pytest

from ssegate.routing import PathTemplate, TemplateError

DEMO = PathTemplate("/events/{symbol}/{exchange}")


def test_params_and_shape() -> None:
    assert DEMO.params == ("symbol", "exchange")
    assert DEMO.shape == "/events/{}/{}"
    assert DEMO.template == "/events/{symbol}/{exchange}"
    assert repr(DEMO) == "PathTemplate('/events/{symbol}/{exchange}')"


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/events/{symbol}/{exchange}", "/events/BRK/NYSE", {"symbol": "BRK", "exchange": "NYSE"}),
        (
            "/events/{symbol}/{exchange}",
            "/events/BRK%2FA/NYSE",
            {"symbol": "BRK/A", "exchange": "NYSE"},
        ),
        ("/events/{symbol}/{exchange}", "/events/caf%C3%A9/X", {"symbol": "café", "exchange": "X"}),
        ("/events/{symbol}/{exchange}", "/events/café/X", {"symbol": "café", "exchange": "X"}),
        ("/events/{symbol}/{exchange}", "/events/a%20b/%25", {"symbol": "a b", "exchange": "%"}),
        ("/events/{symbol}/{exchange}", "/events/../.", {"symbol": "..", "exchange": "."}),
        ("/q/{s}.json", "/q/BRK.json", {"s": "BRK"}),
        ("/q/{s}.json", "/q/a.b.json", {"s": "a.b"}),
        ("/q/v{n}", "/q/v12", {"n": "12"}),
        ("/static", "/static", {}),
        ("/", "/", {}),
        ("/trailing/", "/trailing/", {}),
        ("/{a}", "/x:y@z", {"a": "x:y@z"}),
    ],
)
def test_match(template: str, path: str, expected: dict[str, str]) -> None:
    assert PathTemplate(template).match(path) == expected


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/events/{symbol}/{exchange}", "/events/BRK"),  # too few segments
        ("/events/{symbol}/{exchange}", "/events/BRK/NYSE/extra"),  # a value never spans "/"
        ("/events/{symbol}/{exchange}", "/events//NYSE"),  # empty segment
        ("/events/{symbol}/{exchange}", "/events/BRK/"),  # empty last segment
        ("/events/{symbol}/{exchange}", "/events/BRK/NYSE/"),
        ("/events/{symbol}/{exchange}", "/Events/BRK/NYSE"),  # literal text is case-sensitive
        ("/events/{symbol}/{exchange}", "/events/%ff/NYSE"),  # not UTF-8 once decoded
        ("/events/{symbol}/{exchange}", "/events/%C3/NYSE"),  # truncated UTF-8
        ("/events/{symbol}/{exchange}", "/events/%zz/NYSE"),  # malformed escape
        ("/events/{symbol}/{exchange}", "/events/a%2/NYSE"),
        ("/events/{symbol}/{exchange}", "/events/a%/NYSE"),
        ("/events/{symbol}/{exchange}", "/events/\udcff/NYSE"),  # a lone surrogate
        ("/q/{s}.json", "/q/.json"),  # the parameter needs one character at least
        ("/a%2Fb", "/a/b"),  # literal escapes are compared as written
        ("/a%2Fb", "/a%2fb"),
        ("/static", "/static/"),
        ("/trailing/", "/trailing"),
        ("/static", ""),
    ],
)
def test_no_match(template: str, path: str) -> None:
    assert PathTemplate(template).match(path) is None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("events/{symbol}", "a path template must start with '/', got 'events/{symbol}'"),
        ("", "a path template must start with '/', got ''"),
        ("/events/{}", "empty parameter '{}' at position 8 in '/events/{}'"),
        ("/events/{symbol", "unbalanced '{' at position 8 in '/events/{symbol'"),
        ("/events/{sym{bol}", "unbalanced '{' at position 8 in '/events/{sym{bol}'"),
        ("/events/symbol}", "unbalanced '}' at position 14 in '/events/symbol}'"),
        ("/{a}/{a}", "parameter 'a' appears twice in '/{a}/{a}'"),
        (
            "/{1st}",
            "invalid parameter name '1st' in '/{1st}' "
            "(letters, digits and '_', not starting with a digit)",
        ),
        (
            "/{a-b}",
            "invalid parameter name 'a-b' in '/{a-b}' "
            "(letters, digits and '_', not starting with a digit)",
        ),
        (
            "/{ a }",
            "invalid parameter name ' a ' in '/{ a }' "
            "(letters, digits and '_', not starting with a digit)",
        ),
        (
            "/{a}{b}",
            "parameters in '/{a}{b}' are adjacent: a segment holds at most one {name}, "
            "or where one value ends would be a guess",
        ),
        (
            "/{a}-{b}",
            "parameters in '/{a}-{b}' share one segment: a segment holds at most one {name}, "
            "or where one value ends would be a guess",
        ),
        ("/a//b", "empty segment ('//') at position 2 in '/a//b'"),
        ("//", "empty segment ('//') at position 0 in '//'"),
        (
            "/a b",
            "character ' ' is not allowed in a path template '/a b' (percent-encode it as %20)",
        ),
        (
            "/a?b=1",
            "character '?' is not allowed in a path template '/a?b=1' (percent-encode it as %3F)",
        ),
        (
            "/é",
            "character 'é' is not allowed in a path template '/é' (percent-encode it as %C3%A9)",
        ),
        (
            "/a%2",
            "malformed percent escape at position 2 in '/a%2' "
            "(write %XX with two hex digits; %25 is a literal '%')",
        ),
        (
            "/a%zz",
            "malformed percent escape at position 2 in '/a%zz' "
            "(write %XX with two hex digits; %25 is a literal '%')",
        ),
    ],
)
def test_invalid_templates(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        PathTemplate(template)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_lone_surrogate_in_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="percent-encode it as UTF-8 %XX escapes"):
        PathTemplate("/\udcff")


def test_one_parameter_per_segment_with_literal_around_it() -> None:
    template = PathTemplate("/v1/{symbol}.json/{exchange}")
    assert template.params == ("symbol", "exchange")
    assert template.match("/v1/a.json/b") == {"symbol": "a", "exchange": "b"}


def test_equality_follows_the_text() -> None:
    assert PathTemplate("/a/{x}") == PathTemplate("/a/{x}")
    assert PathTemplate("/a/{x}") != PathTemplate("/a/{y}")
    assert PathTemplate("/a/{x}").shape == PathTemplate("/a/{y}").shape
    assert len({PathTemplate("/a/{x}"), PathTemplate("/a/{x}")}) == 1
