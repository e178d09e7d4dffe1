"""From a plain document to a typed `Config`: msgspec conversion, with its errors in our words.

Conversion is not strict, so "7114" becomes 7114; durations (`15s`) and sizes (`64KiB`)
go through `parse_duration` and `parse_size`. msgspec's ValidationError ("Expected `int`,
got `str` - at `$.listeners[0].port`") becomes a `ConfigProblem` at that path, worded like
the rest of ssegate's messages ("expected int, got str").
"""

from __future__ import annotations

import math
import re
import types
from fractions import Fraction
from typing import Any, Union, get_args, get_origin

import msgspec

from ssegate.config.problems import ConfigPath, ConfigProblem
from ssegate.config.schema import ByteSize, Config, Seconds

__all__ = ["convert", "parse_duration", "parse_size"]


def convert(document: dict[Any, Any]) -> Config:
    """The typed configuration; ConfigProblem (from msgspec's error) on the first mismatch."""
    try:
        return msgspec.convert(document, Config, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        where, message = _translate(str(exc), document)
        raise ConfigProblem(where, message) from exc


# --- Durations and sizes --------------------------------------------------------------------

_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*")
# KB, MB, GB, TB are powers of 1000 (and kB, the SI spelling); KiB, MiB, GiB, TiB of 1024.
_SIZE_UNITS: dict[str | None, int] = {None: 1, "B": 1, "kB": 1000} | {
    f"{prefix}{i}B": (1024 if i else 1000) ** n
    for n, prefix in enumerate("KMGT", 1)
    for i in ("i", "")
}
_DURATION_HELP = "a duration such as 15s, 500ms, 2m, 1h or a number of seconds"
_SIZE_HELP = "a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of bytes"


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like `500ms`, `15s`, `2m`, `1.5h`; ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_DURATION_HELP}, got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"duration {value!r} is too large") from None
    elif isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found is None:
            raise ValueError(f"expected {_DURATION_HELP}, got {value!r}")
        seconds = float(found.group(1)) * _DURATION_UNITS[found.group(2)]
    else:
        raise ValueError(f"expected {_DURATION_HELP}, got {_type_name(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from an integer or a string like `64KiB`, `1MiB`, `1.5GB`; ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_SIZE_HELP}, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"size {value!r} is not a whole number of bytes")
    if not isinstance(value, str):
        raise ValueError(f"expected {_SIZE_HELP}, got {_type_name(value)}")
    found = _SIZE.fullmatch(value)
    if found is None:
        raise ValueError(f"expected {_SIZE_HELP}, got {value!r}")
    size = Fraction(found.group(1)) * _SIZE_UNITS[found.group(2)]
    if size.denominator != 1:
        raise ValueError(f"size {value!r} is not a whole number of bytes")
    return int(size)


def _dec_hook(kind: type, value: Any) -> Any:
    # msgspec reports a ValueError raised here as a ValidationError at the field's path.
    if kind is Seconds:
        return Seconds(parse_duration(value))
    if kind is ByteSize:
        return ByteSize(parse_size(value))
    raise TypeError(f"cannot convert to {kind.__name__}")  # pragma: no cover - schema bug


# --- msgspec's messages in our words --------------------------------------------------------

# msgspec's names for the types YAML yields, and the words our messages use instead.
_MSGSPEC_NAMES: dict[type, str] = {type(None): "null", list: "array", dict: "object", set: "set"}
_OUR_NAMES = {"object": "mapping", "array": "list"}


def _msgspec_name(value: object) -> str:
    return _MSGSPEC_NAMES.get(type(value), type(value).__name__)


def _type_name(value: object) -> str:
    name = _msgspec_name(value)
    return _OUR_NAMES.get(name, name)


_AT_KEY = re.compile(r"(?s)(.*) - at `key` in `\$(.*)`")
_AT = re.compile(r"(?s)(.*) - at `\$(.*)`")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_EXPECTED = re.compile(r"Expected `([^`]+)`, got `([^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(.+)`")
_MISSING = re.compile(r"Object missing required field `(.+)`")
_ENUM = re.compile(r"Invalid enum value (.+)")


def _translate(message: str, raw: Any) -> tuple[ConfigPath, str]:
    """msgspec's "Expected `int`, got `str` - at `$.a[0].b`" -> (("a", 0, "b"), our text)."""
    at_key = _AT_KEY.fullmatch(message)
    if at_key:
        where = _resolve_path(_split_path(at_key.group(2)), raw, None)
        container: Any = raw
        for segment in where:
            container = _child(container, segment)
        keys = list(container) if isinstance(container, dict) else []
        bad = next((k for k in keys if not isinstance(k, str)), None)
        return where, f"key {bad!r} must be a string"
    at = _AT.fullmatch(message)
    body, segments = (at.group(1), _split_path(at.group(2))) if at else (message, [])
    expected = _EXPECTED.fullmatch(body)
    where = _resolve_path(segments, raw, expected.group(2) if expected else None)
    if expected:
        wanted = [_OUR_NAMES.get(n, n) for n in expected.group(1).split(" | ")]
        got = _OUR_NAMES.get(expected.group(2), expected.group(2))
        text = f"expected {_or(wanted)}, got {got}"
        if "str" in wanted and got in ("int", "float", "bool"):
            text += " (quote the value in YAML)"
        elif got == "null":
            text += " (the value is empty)"
        return where, text
    unknown = _UNKNOWN.fullmatch(body)
    if unknown:
        kind = _type_at(where)
        allowed = [f.name for f in msgspec.structs.fields(kind)] if _is_struct(kind) else []
        suffix = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return (*where, unknown.group(1)), f"unknown field{suffix}"
    missing = _MISSING.fullmatch(body)
    if missing:
        return where, f"missing required field {missing.group(1)!r}"
    enum = _ENUM.fullmatch(body)
    if enum:
        values = [str(v) for v in get_args(_unwrap(_type_at(where)))]
        return where, f"{enum.group(1)} is not one of {', '.join(values)}"
    return where, body


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _split_path(text: str) -> list[str | int | None]:
    """`.routes[0].filters[...]` -> ["routes", 0, "filters", None]; None is a mapping key."""
    return [name or (int(index) if index else None) for name, index in _SEGMENT.findall(text)]


def _resolve_path(segments: list[str | int | None], raw: Any, got: str | None) -> ConfigPath:
    """Fill in the mapping keys msgspec writes as `[...]`, from the document itself.

    The key is the first whose value has the type msgspec complains about; if none can be
    found, the path stops at the mapping.
    """
    where: list[str | int] = []
    node = raw
    for segment in segments:
        if segment is None:
            if not isinstance(node, dict):
                break
            key = next((k for k, v in node.items() if got is None or _msgspec_name(v) == got), None)
            if key is None:
                break
            segment = key
        where.append(segment)
        node = _child(node, segment)
    return tuple(where)


def _child(node: Any, segment: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(segment)
    if isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
        return node[segment]
    return None


def _unwrap(kind: Any) -> Any:
    """`X | None` -> X."""
    if get_origin(kind) in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return kind


def _type_at(path: ConfigPath) -> Any:
    kind: Any = Config
    for segment in path:
        kind = _unwrap(kind)
        if _is_struct(kind):
            fields = {f.name: f.type for f in msgspec.structs.fields(kind)}
            kind = fields.get(str(segment))
        elif get_origin(kind) is list:
            kind = get_args(kind)[0]
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1]
        else:
            return None
    return _unwrap(kind)


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)
