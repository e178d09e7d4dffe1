"""Expressions in route values: literal text with `${namespace.name}` parts.

Grammar, read left to right:

1. `$${` is a literal `${` (the escape).
2. `${namespace.name}` is a reference; namespace and name are `[A-Za-z_][A-Za-z0-9_]*`,
   with no spaces, and the name may have dotted parts (`${tls.client.cn}`). Zilla's
   `${guarded['<guard>'].identity}` and `${guarded['<guard>'].attributes.<name>}` are
   references too, to ("guarded", "<guard>.identity" or "<guard>.attributes.<name>").
   Anything else between `${` and the next `}`, or no `}` at all, is malformed.
3. Every other character, including a `$` or `}` on its own, is literal text.

Parsing accepts any namespace; which ones a route may use (`params`, `tls`) is the route
compiler's decision (`router.compile_route`). Sans-I/O: no logging, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ssegate.errors import RouteConfigError

__all__ = ["Expression", "ExpressionError", "Reference"]

_REFERENCE = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
)

# Zilla's identity references: ${guarded['<guard>'].identity} and
# ${guarded['<guard>'].attributes.<name>}.
_GUARDED = re.compile(
    r"guarded\['([A-Za-z][A-Za-z0-9_-]*)'\]\.(identity|attributes\.[A-Za-z_][A-Za-z0-9_]*)"
)

Reference = tuple[str, str]
"""(namespace, name) of one `${namespace.name}` part."""


class ExpressionError(RouteConfigError):
    """An expression is malformed, or a reference has no value.

    `expression` is the offending `${...}` text when there is one; `location` is where in
    a larger structure the expression sits (set by `FilterTemplate.compile`, e.g.
    `(0, "headers", "tag")`), for the caller to prefix with its own path.
    """

    def __init__(
        self, message: str, *, expression: str = "", location: tuple[str | int, ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.location = location


class Expression:
    """A parsed expression: `parts` alternate literal strings and references."""

    __slots__ = ("_literal", "parts", "text")

    text: str
    parts: tuple[str | Reference, ...]
    _literal: str | None

    def __init__(self, text: str, parts: tuple[str | Reference, ...]) -> None:
        self.text = text
        self.parts = parts
        if all(isinstance(part, str) for part in parts):
            self._literal = "".join(part for part in parts if isinstance(part, str))
        else:
            self._literal = None

    @classmethod
    def parse(cls, text: str) -> Expression:
        """Parse `text`; raise ExpressionError for a malformed `${...}`."""
        parts: list[str | Reference] = []
        literal: list[str] = []
        i = 0
        length = len(text)
        while i < length:
            start = text.find("$", i)
            if start < 0:
                literal.append(text[i:])
                break
            literal.append(text[i:start])
            if text.startswith("$${", start):
                literal.append("${")
                i = start + 3
                continue
            if not text.startswith("${", start):
                literal.append("$")
                i = start + 1
                continue
            end = text.find("}", start + 2)
            if end < 0:
                snippet = text[start:]
                raise ExpressionError(
                    f"malformed expression {snippet!r} (no closing '}}'; "
                    "write $${ for a literal ${)",
                    expression=snippet,
                )
            body = text[start + 2 : end]
            guarded = _GUARDED.fullmatch(body)
            found = guarded or _REFERENCE.fullmatch(body)
            if found is None:
                snippet = text[start : end + 1]
                raise ExpressionError(
                    f"malformed expression {snippet!r} (expected ${{namespace.name}}; "
                    "write $${ for a literal ${)",
                    expression=snippet,
                )
            if literal:
                joined = "".join(literal)
                if joined:
                    parts.append(joined)
                literal = []
            if guarded is not None:  # Zilla's form: ("guarded", "<guard>.identity")
                parts.append(("guarded", f"{guarded.group(1)}.{guarded.group(2)}"))
            else:
                parts.append((found.group(1), found.group(2)))
            i = end + 1
        joined = "".join(literal)
        if joined:
            parts.append(joined)
        return cls(text, tuple(parts))

    @classmethod
    def literal(cls, value: str) -> Expression:
        """An expression whose value is `value`, whatever characters it holds."""
        return cls(value.replace("${", "$${"), (value,) if value else ())

    @property
    def references(self) -> frozenset[Reference]:
        return frozenset(part for part in self.parts if isinstance(part, tuple))

    @property
    def is_literal(self) -> bool:
        return self._literal is not None

    def resolve(self, params: Mapping[str, str]) -> str:
        """The value with every reference replaced: `${params.name}` by `params[name]`,
        any other `${namespace.name}` by `params["namespace.name"]` (the request's own
        values, such as `tls.client.cn`).

        A reference `params` has no value for raises ExpressionError (never KeyError).
        """
        if self._literal is not None:
            return self._literal
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            namespace, name = part
            value = params.get(name if namespace == "params" else f"{namespace}.{name}")
            if value is None:
                reference = f"${{{namespace}.{name}}}"
                raise ExpressionError(f"no value for {reference}", expression=reference)
            out.append(value)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expression):
            return NotImplemented
        return self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)
