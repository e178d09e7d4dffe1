"""Loading a configuration file: YAML, `${env.NAME}`, typed conversion, semantic checks.

The steps, each of which stops at its first error with a `ConfigError` whose text is one
line, `<file>: <path>: <message>` (the path written as `routes[0].filters[1].key`):

1. Parse YAML with PyYAML's C loader (the pure-Python SafeLoader when libyaml is absent).
   Syntax errors, and a key given twice in one mapping, name the line and column.
2. Substitute `${env.NAME}` and `${env.NAME:-default}` in every string value, before any
   type conversion, so `port: ${env.PORT}` works. `$${` is a literal `${`. In route
   fields that take expressions (`topic`, `filters[].key`, `filters[].headers.*`) other
   `${...}` are left for routing, and substituted values are escaped so they stay literal;
   anywhere else another `${...}` is an error (it is most likely a typo).
3. Convert with msgspec (non-strict, so "7114" becomes 7114; durations and sizes through
   `dec_hook`), translating its ValidationError into our path format.
4. Compile the routes (`ssegate.routing.compile_route`) and check what types cannot say:
   ranges, duplicates, origins, static files. Checks run in the order of `Config`'s fields.
"""

from __future__ import annotations

import math
import os
import re
import stat
import types
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn, Union, get_args, get_origin

import msgspec
import yaml

from ssegate.config.schema import ByteSize, Config, Seconds
from ssegate.errors import ConfigError
from ssegate.routing import (
    RESERVED_PATHS,
    CompiledRoute,
    RouteError,
    compile_route,
    format_path,
)

__all__ = ["LoadedConfig", "load_config", "parse_config", "parse_duration", "parse_size"]

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedConfig:
    """A checked configuration with its compiled routes."""

    config: Config
    routes: tuple[CompiledRoute, ...]  # in declaration order
    source: str  # the file as named by the caller, or "<string>"
    base_dir: Path  # the file's directory; static files resolve against it

    def static_files(self) -> dict[str, Path]:
        """URL path -> absolute file path, for every `static` entry."""
        return {url: self.base_dir / file for url, file in self.config.static.items()}


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, parse and check the file at `path`; ConfigError on the first problem."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{source}: cannot read the file: {reason}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{source}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from exc
    return parse_config(text, source=source, base_dir=path.absolute().parent, environ=environ)


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Parse and check YAML `text`; `source` names it in messages, `base_dir` anchors files.

    `base_dir` defaults to the current directory and `environ` to `os.environ`.
    """
    base = (base_dir if base_dir is not None else Path.cwd()).absolute()
    env = os.environ if environ is None else environ
    raw = _load_yaml(text, source)
    if raw is None:
        raise ConfigError(f"{source}: the configuration is empty (it needs kafka: and routes:)")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections (kafka:, routes:, ...), "
            f"got {_yaml_kind(raw)}"
        )
    try:
        raw = _Substitution(env).walk(raw, ())
        config = msgspec.convert(raw, Config, strict=False, dec_hook=_dec_hook)
    except _Problem as problem:
        raise ConfigError(problem.render(source)) from None
    except msgspec.ValidationError as exc:
        where, message = _translate(str(exc), raw)
        raise ConfigError(_render(source, where, message)) from exc
    except RecursionError:
        raise ConfigError(f"{source}: the document is nested too deeply") from None
    try:
        routes = _check(config, base)
    except _Problem as problem:
        raise ConfigError(problem.render(source)) from None
    return LoadedConfig(config=config, routes=routes, source=source, base_dir=base)


class _Problem(Exception):
    """One configuration error, before the file name is known to the message."""

    def __init__(self, path: Path_, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message

    def render(self, source: str) -> str:
        return _render(source, self.path, self.message)


def _render(source: str, path: Path_, message: str) -> str:
    text = f"{source}: {format_path(path)}: {message}" if path else f"{source}: {message}"
    return " ".join(text.split("\n"))


# --- 1. YAML ------------------------------------------------------------------------------

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader, but a key repeated in one mapping is an error, not a silent override.

    Keys brought in by a merge (`<<: *defaults`) may still be overridden.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable: the base class reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"{source}: {_describe_yaml_error(exc)}") from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        raise ConfigError(
            f"{source}: line {line}, column {column}: {exc.reason} ({shown})"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{source}: the document is nested too deeply") from None


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem and exc.context_mark is not None:
        problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return where + problem


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a single {type(value).__name__} value"


# --- 2. ${env.NAME} -----------------------------------------------------------------------

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV = re.compile(r"env\.([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_ENV_HELP = "write ${env.NAME} or ${env.NAME:-default}"


def _is_expression_field(path: Path_) -> bool:
    """Route fields whose strings routing parses as expressions."""
    if len(path) < 3 or path[0] != "routes" or not isinstance(path[1], int):
        return False
    rest = path[2:]
    if rest == ("topic",):
        return True
    if len(rest) < 3 or rest[0] != "filters" or not isinstance(rest[1], int):
        return False
    return rest[2:] == ("key",) or (len(rest) == 4 and rest[2] == "headers")


class _Substitution:
    """Walks the parsed document, returning a copy with `${env...}` substituted.

    Aliased nodes (`*anchor`) are substituted once per place in the schema, and a node that
    contains itself is an error rather than endless recursion.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.done: dict[tuple[int, tuple[str | int, ...]], Any] = {}
        self.active: set[int] = set()

    def walk(self, node: Any, path: Path_) -> Any:
        if isinstance(node, str):
            return self.expand(node, path)
        if not isinstance(node, dict | list):
            return node
        # Where in the schema this node sits: list indexes do not matter for substitution.
        place = tuple(-1 if isinstance(s, int) else s for s in path)
        memo = (id(node), place if place[:1] == ("routes",) else ())
        if memo in self.done:
            return self.done[memo]
        if id(node) in self.active:
            raise _Problem(path, "a YAML alias refers to the node that contains it")
        self.active.add(id(node))
        try:
            if isinstance(node, dict):
                result: Any = {key: self.walk(value, (*path, key)) for key, value in node.items()}
            else:
                result = [self.walk(item, (*path, i)) for i, item in enumerate(node)]
        finally:
            self.active.discard(id(node))
        self.done[memo] = result
        return result

    def expand(self, text: str, path: Path_) -> str:
        if "${" not in text:
            return text
        expression = _is_expression_field(path)
        pieces: list[tuple[str, bool]] = []  # (text, is a substituted literal value)
        position = 0
        for found in _TOKEN.finditer(text):
            pieces.append((text[position : found.start()], False))
            position = found.end()
            token = found.group(0)
            body = found.group(1)
            if token == "$${":  # noqa: S105 - the escape, not a password
                pieces.append(("$${" if expression else "${", False))
            elif body is not None and (body.startswith("env.") or body == "env"):
                pieces.append((self.lookup(token, body, path), True))
            elif expression:
                pieces.append((token, False))  # for routing to parse and judge
            elif body is None or "${" in body:
                raise _Problem(path, f"malformed {text[found.start() :]!r} ({_ENV_HELP})")
            else:
                raise _Problem(
                    path,
                    f"{token!r} is not available here (only ${{env.NAME}} is; "
                    "write $${ for a literal ${)",
                )
        pieces.append((text[position:], False))
        if not expression:
            return "".join(piece for piece, _ in pieces)
        return _join_as_expression(pieces, path)

    def lookup(self, token: str, body: str, path: Path_) -> str:
        found = _ENV.fullmatch(body)
        if found is None or "${" in body:
            raise _Problem(path, f"malformed {token!r} ({_ENV_HELP})")
        name, default = found.group(1), found.group(2)
        value = self.environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        raise _Problem(path, f"environment variable {name} is not set")


def _join_as_expression(pieces: list[tuple[str, bool]], path: Path_) -> str:
    """Join template pieces and substituted values so routing reads the values literally.

    A value's `${` becomes `$${`. A value ending in `$` followed by `{` would form `${`,
    so its `$` is doubled (`$${` reads back as `${`); followed by an expression there is no
    way to write it, which is an error.
    """
    out: list[str] = []
    for index, (piece, literal) in enumerate(pieces):
        if not literal:
            out.append(piece)
            continue
        escaped = piece.replace("${", "$${")
        if escaped.endswith("$"):
            after = "".join(p.replace("${", "$${") if lit else p for p, lit in pieces[index + 1 :])
            if after.startswith("${"):
                raise _Problem(
                    path, "a substituted value ending in '$' cannot precede an expression"
                )
            if after.startswith("{"):
                escaped += "$"
        out.append(escaped)
    return "".join(out)


# --- 3. Conversion ------------------------------------------------------------------------

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
    if kind is Seconds:
        return Seconds(parse_duration(value))
    if kind is ByteSize:
        return ByteSize(parse_size(value))
    raise TypeError(f"cannot convert to {kind.__name__}")  # pragma: no cover - schema bug


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


def _translate(message: str, raw: Any) -> tuple[Path_, str]:
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


def _resolve_path(segments: list[str | int | None], raw: Any, got: str | None) -> Path_:
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


def _type_at(path: Path_) -> Any:
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


# --- 4. Semantic checks -------------------------------------------------------------------

_ORIGIN = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::(\d{1,5}))?"
)


def _fail(path: Path_, message: str) -> NoReturn:
    raise _Problem(path, message)


def _at_least(path: Path_, value: int, minimum: int) -> None:
    if value < minimum:
        _fail(path, f"must be at least {minimum}, got {value}")


def _positive_duration(path: Path_, value: float) -> None:
    if not value > 0:
        _fail(path, f"must be greater than 0, got {_seconds(value)}")


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _check(config: Config, base_dir: Path) -> tuple[CompiledRoute, ...]:
    _check_kafka(config)
    routes = _check_routes(config)
    _check_listeners(config)
    _check_sse(config)
    _check_cors(config)
    _check_limits(config)
    _check_server(config)
    _check_static(config, routes, base_dir)
    return routes


def _check_kafka(config: Config) -> None:
    kafka = config.kafka
    if not kafka.bootstrap_servers.strip():
        _fail(("kafka", "bootstrap_servers"), "must not be empty")
    _at_least(("kafka", "ring", "max_records"), kafka.ring.max_records, 1)
    _at_least(("kafka", "ring", "max_bytes"), kafka.ring.max_bytes, 1)
    _positive_duration(("kafka", "metadata_refresh"), kafka.metadata_refresh)
    _at_least(("kafka", "max_catchup_readers"), kafka.max_catchup_readers, 1)
    if kafka.compact_id_margin < 0:
        _fail(
            ("kafka", "compact_id_margin"),
            f"must be at least 0, got {_seconds(kafka.compact_id_margin)}",
        )


def _check_routes(config: Config) -> tuple[CompiledRoute, ...]:
    compiled: list[CompiledRoute] = []
    shapes: dict[str, CompiledRoute] = {}
    for index, cfg in enumerate(config.routes):
        try:
            route = compile_route(index, cfg)
        except RouteError as exc:
            _fail(("routes", index, *exc.path), exc.message)
        where: Path_ = ("routes", index, "path")
        if route.path in RESERVED_PATHS:
            _fail(where, f"{route.path!r} is a built-in endpoint ({', '.join(RESERVED_PATHS)})")
        earlier = shapes.get(route.template.shape)
        if earlier is not None:
            same = "duplicates" if earlier.path == route.path else "matches the same paths as"
            _fail(
                where,
                f"{route.path!r} {same} routes[{earlier.index}].path {earlier.path!r} "
                "(the first route wins, so this one would never match)",
            )
        shapes[route.template.shape] = route
        compiled.append(route)
    return tuple(compiled)


def _check_listeners(config: Config) -> None:
    if not config.listeners:
        _fail(("listeners",), "at least one listener is required")
    seen: dict[tuple[str, int], int] = {}
    for index, listener in enumerate(config.listeners):
        if not listener.host.strip():
            _fail(("listeners", index, "host"), "must not be empty")
        if not 0 <= listener.port <= 65535:
            _fail(("listeners", index, "port"), f"{listener.port} is out of range (0 to 65535)")
        _at_least(("listeners", index, "backlog"), listener.backlog, 1)
        if listener.port == 0:  # ephemeral: every one gets its own port
            continue
        address = (listener.host.strip().lower(), listener.port)
        if address in seen:
            host = f"[{listener.host}]" if ":" in listener.host else listener.host
            _fail(
                ("listeners", index),
                f"duplicates listeners[{seen[address]}] ({host}:{listener.port})",
            )
        seen[address] = index


def _check_sse(config: Config) -> None:
    _positive_duration(("sse", "heartbeat"), config.sse.heartbeat)
    if not 0 <= config.sse.max_delay <= 1:
        _fail(
            ("sse", "max_delay"),
            f"must be between 0 and 1s, got {_seconds(config.sse.max_delay)}",
        )
    if config.sse.retry is not None:
        _at_least(("sse", "retry"), config.sse.retry, 0)


def _check_cors(config: Config) -> None:
    for index, origin in enumerate(config.cors.allow.origins or ()):
        found = _ORIGIN.fullmatch(origin)
        if origin != "*" and (found is None or int(found.group(1) or 0) > 65535):
            _fail(
                ("cors", "allow", "origins", index),
                f"{origin!r} is not an origin (write scheme://host[:port], or *)",
            )
    if config.cors.max_age is not None and config.cors.max_age < 0:
        _fail(("cors", "max_age"), f"must be at least 0, got {_seconds(config.cors.max_age)}")


def _check_limits(config: Config) -> None:
    limits = config.limits
    _at_least(("limits", "max_streams"), limits.max_streams, 1)
    _at_least(("limits", "max_streams_per_ip"), limits.max_streams_per_ip, 0)
    _at_least(("limits", "max_topics"), limits.max_topics, 1)
    _at_least(("limits", "max_header_bytes"), limits.max_header_bytes, 1)
    _positive_duration(("limits", "request_timeout"), limits.request_timeout)
    _positive_duration(("limits", "keepalive_timeout"), limits.keepalive_timeout)
    _at_least(("limits", "write_buffer_high_water"), limits.write_buffer_high_water, 1)


def _check_server(config: Config) -> None:
    _at_least(("server", "workers"), config.server.workers, 1)
    _positive_duration(("server", "shutdown_timeout"), config.server.shutdown_timeout)


def _check_static(config: Config, routes: tuple[CompiledRoute, ...], base_dir: Path) -> None:
    for url, file in config.static.items():
        where: Path_ = ("static", url)
        if not url.startswith("/"):
            _fail(where, f"the URL path {url!r} must start with '/'")
        if "?" in url or "#" in url:
            _fail(where, f"the URL path {url!r} cannot hold '?' or '#'")
        if url in RESERVED_PATHS:
            _fail(where, f"{url!r} is a built-in endpoint ({', '.join(RESERVED_PATHS)})")
        for route in routes:
            if route.template.match(url) is not None:
                _fail(
                    where,
                    f"{url!r} is also matched by routes[{route.index}].path {route.path!r}; "
                    "a URL serves a file or a stream, not both",
                )
        _check_file(where, base_dir / file)


def _check_file(where: Path_, target: Path) -> None:
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the name
        _fail(where, f"no such file: {target}")
    except OSError as exc:
        _fail(where, f"cannot use {target}: {exc.strerror or exc}")
    if not stat.S_ISREG(mode):
        _fail(where, f"not a regular file: {target}")
    if not os.access(target, os.R_OK):
        _fail(where, f"cannot read {target}: permission denied")
