"""Where in a configuration something is wrong: the path type, its written form, the error.

A path such as `("routes", 0, "filters", 1, "key")` is written `routes[0].filters[1].key`.
A `ConfigProblem` carries one and a message; whoever knows the file's name renders it as
the one-line text of a `ConfigError`: `<file>: <path>: <message>`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from ssegate.errors import ConfigError

__all__ = ["ConfigPath", "ConfigProblem", "format_path", "render_problem"]

ConfigPath = tuple[str | int, ...]
"""Mapping keys and list indexes from the top of the document to one value."""

_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")


def format_path(path: Sequence[str | int]) -> str:
    """Write a configuration path as messages show it: `routes[0].filters[1].headers.tag`.

    Integers are list indexes; a mapping key that is not a plain name is quoted:
    `static["/index.html"]`.
    """
    out: list[str] = []
    for segment in path:
        if isinstance(segment, int) and not isinstance(segment, bool):
            out.append(f"[{segment}]")
        elif isinstance(segment, str) and _SIMPLE_KEY.fullmatch(segment):
            out.append(f".{segment}" if out else segment)
        elif isinstance(segment, str):
            out.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
        else:
            out.append(f"[{segment!r}]")
    return "".join(out)


def render_problem(source: str, path: ConfigPath, message: str) -> str:
    """`<source>: <path>: <message>` (no path part when `path` is empty), on one line."""
    text = f"{source}: {format_path(path)}: {message}" if path else f"{source}: {message}"
    return " ".join(text.split("\n"))


class ConfigProblem(ConfigError):
    """One configuration error at `path`, before the file's name is known to the message."""

    def __init__(self, path: ConfigPath, message: str) -> None:
        super().__init__(f"{format_path(path)}: {message}" if path else message)
        self.path = path
        self.message = message

    def render(self, source: str) -> str:
        """The complete one-line text, naming the file."""
        return render_problem(source, self.path, self.message)
