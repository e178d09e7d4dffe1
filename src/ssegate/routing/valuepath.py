"""Paths into a record's JSON value, for value filters: `$.symbol`, `$.order.lines[0].sku`.

1. A path starts with `$`, then any number of `.name` (letters, digits, `_`, `-`) or
   `['any name']` steps into objects and `[N]` steps into arrays (N ≥ 0).
2. `field_text` is what a filter compares: a string field as it is, any other field as its
   compact JSON text (`42`, `true`, `null`, `{"a":1}`); None when the path leads nowhere
   (a missing name, an index past the end, a step into a scalar).
Sans-I/O.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

Step = str | int
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\['([^'\]]*)'\]")


def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of `text`; ValueError says what is wrong with it."""
    if not text.startswith("$"):
        raise ValueError(f"{text!r}: a value path starts with $ (e.g. $.symbol)")
    steps: list[Step] = []
    position = 1
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(
                f"{text!r}: cannot read the path at {text[position:]!r}"
                " (steps are .name, ['name'] or [index])"
            )
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        position = match.end()
    if not steps:
        raise ValueError(f"{text!r}: a value path names a field, e.g. $.symbol")
    return tuple(steps)


def field_text(document: Any, steps: tuple[Step, ...]) -> str | None:
    """The text a filter compares for the field at `steps` (rule 2)."""
    node = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    if isinstance(node, str):
        return node
    return msgspec.json.encode(node).decode()


def format_path(steps: tuple[Step, ...]) -> str:
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)
