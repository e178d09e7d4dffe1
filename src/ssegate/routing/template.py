"""Path templates: `/events/{symbol}/{exchange}` matched against a request's path.

Rules (numbered so tests and docs can point at them):

1. A template starts with `/`. Literal text is compared with the raw request path exactly,
   byte for byte: `%2F` in a template matches `%2F`, not `%2f` and not `/`.
2. `{name}` (name = `[A-Za-z_][A-Za-z0-9_]*`) captures ONE path segment: one or more
   characters other than `/`. Zilla captures with a greedy `.+` that may span `/`, so
   `/{a}/{b}` on `/x/y/z` splits wherever the regex engine decides; one segment per
   parameter makes every match predictable and leaves no ambiguity.
3. A segment holds at most one parameter (`/{symbol}.json` is fine, `/{a}-{b}` is not:
   which `-` separates them would again be a guess). A name appears once per template.
4. Empty segments (`//`) are not allowed in a template; a trailing `/` is literal text.
   An empty segment in a request never matches a parameter.
5. Literal characters are those RFC 3986 allows in a path (unreserved, sub-delims, `:`,
   `@`, `/`) and `%XX` escapes; anything else must be percent-encoded in the template.
6. A captured value is percent-decoded as UTF-8 (`BRK%2FA` gives `BRK/A`). A malformed
   escape (`%zz`) or bytes that are not UTF-8 mean the path does not match.

Sans-I/O: no logging, no I/O; `match` runs once per request.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

from ssegate.errors import RouteConfigError

__all__ = ["PathTemplate", "TemplateError"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# RFC 3986 pchar minus pct-encoded (checked separately), plus "/".
_LITERAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/"
)
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class TemplateError(RouteConfigError):
    """A path template is malformed; the message says where and why."""


class PathTemplate:
    """A compiled path template; `match` returns the decoded parameters or None."""

    __slots__ = ("_regex", "params", "shape", "template")

    template: str
    params: tuple[str, ...]
    shape: str
    _regex: re.Pattern[str]

    def __init__(self, template: str) -> None:
        self.template = template
        parts = _parse(template)
        params: list[str] = []
        pattern: list[str] = []
        shape: list[str] = []
        for part in parts:
            if isinstance(part, _Param):
                params.append(part.name)
                pattern.append(f"(?P<{part.name}>[^/]+)")
                shape.append("{}")
            else:
                pattern.append(re.escape(part))
                shape.append(part)
        self.params = tuple(params)
        # Two templates with the same shape match exactly the same paths.
        self.shape = "".join(shape)
        self._regex = re.compile("".join(pattern))

    def match(self, path: str) -> dict[str, str] | None:
        """The decoded parameters when `path` (without its query) matches, else None."""
        found = self._regex.fullmatch(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for name in self.params:
            value = _decode(found.group(name))
            if value is None:
                return None
            values[name] = value
        return values

    def __repr__(self) -> str:
        return f"PathTemplate({self.template!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PathTemplate):
            return NotImplemented
        return self.template == other.template

    def __hash__(self) -> int:
        return hash(self.template)


class _Param:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _parse(template: str) -> list[str | _Param]:
    if not template.startswith("/"):
        raise TemplateError(f"a path template must start with '/', got {template!r}")
    parts: list[str | _Param] = []
    seen: set[str] = set()
    literal: list[str] = []
    params_in_segment = 0
    previous_was_param = False
    i = 0
    while i < len(template):
        char = template[i]
        if char == "{":
            end = template.find("}", i + 1)
            nested = template.find("{", i + 1)
            if end < 0 or 0 <= nested < end:
                raise TemplateError(f"unbalanced '{{' at position {i} in {template!r}")
            name = template[i + 1 : end]
            if not name:
                raise TemplateError(f"empty parameter '{{}}' at position {i} in {template!r}")
            if not _NAME.fullmatch(name):
                raise TemplateError(
                    f"invalid parameter name {name!r} in {template!r} "
                    "(letters, digits and '_', not starting with a digit)"
                )
            if name in seen:
                raise TemplateError(f"parameter {name!r} appears twice in {template!r}")
            params_in_segment += 1
            if params_in_segment > 1:
                kind = "are adjacent" if previous_was_param else "share one segment"
                raise TemplateError(
                    f"parameters in {template!r} {kind}: a segment holds at most one "
                    "{name}, or where one value ends would be a guess"
                )
            seen.add(name)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Param(name))
            previous_was_param = True
            i = end + 1
            continue
        previous_was_param = False
        if char == "}":
            raise TemplateError(f"unbalanced '}}' at position {i} in {template!r}")
        if char == "/":
            if i > 0 and template[i - 1] == "/":
                raise TemplateError(f"empty segment ('//') at position {i - 1} in {template!r}")
            params_in_segment = 0
        elif char == "%":
            if not _is_hex2(template, i):
                raise TemplateError(
                    f"malformed percent escape at position {i} in {template!r} "
                    "(write %XX with two hex digits; %25 is a literal '%')"
                )
        elif char not in _LITERAL_CHARS:
            raise TemplateError(
                f"character {char!r} is not allowed in a path template {template!r} "
                f"(percent-encode it as {_encoded(char)})"
            )
        literal.append(char)
        i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _is_hex2(text: str, i: int) -> bool:
    pair = text[i + 1 : i + 3]
    return len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX


def _encoded(char: str) -> str:
    try:
        return quote(char, safe="", errors="strict")
    except UnicodeEncodeError:
        return "UTF-8 %XX escapes"


def _decode(value: str) -> str | None:
    """Percent-decode one captured segment as UTF-8; None when malformed."""
    if "%" in value and value.count("%") != len(_ESCAPE.findall(value)):
        return None
    try:
        if "%" not in value:
            value.encode("utf-8")  # rejects lone surrogates
            return value
        return unquote_to_bytes(value).decode("utf-8")
    except UnicodeError:
        return None
