"""Configuration paths as messages write them, and the located problem that carries one."""

from __future__ import annotations

import pytest

from ssegate.config.problems import ConfigProblem, format_path, render_problem
from ssegate.errors import ConfigError


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("routes", 0, "filters", 1, "headers", "tag"), "routes[0].filters[1].headers.tag"),
        (
            ("routes", 0, "filters", 0, "headers", "zilla:identity"),
            "routes[0].filters[0].headers.zilla:identity",
        ),
        (("kafka", "properties", "sasl.mechanism"), "kafka.properties.sasl.mechanism"),
        (("static", "/"), 'static["/"]'),
        (("static", "/index.html"), 'static["/index.html"]'),
        (("static", 1), "static[1]"),
        (("static", None), "static[None]"),
        (("a b",), '["a b"]'),
        ((), ""),
    ],
)
def test_format_path(path: tuple[object, ...], text: str) -> None:
    assert format_path(path) == text  # type: ignore[arg-type]


def test_a_problem_renders_with_the_file_on_one_line() -> None:
    problem = ConfigProblem(("routes", 0, "path"), "bad\nvery bad")
    assert isinstance(problem, ConfigError)
    assert (problem.path, problem.message) == (("routes", 0, "path"), "bad\nvery bad")
    assert str(problem) == "routes[0].path: bad\nvery bad"
    assert problem.render("c.yaml") == "c.yaml: routes[0].path: bad very bad"


def test_a_problem_without_a_path_names_only_the_file() -> None:
    assert str(ConfigProblem((), "empty")) == "empty"
    assert ConfigProblem((), "empty").render("c.yaml") == "c.yaml: empty"
    assert render_problem("c.yaml", ("kafka",), "x") == "c.yaml: kafka: x"
