"""From YAML text to a plain document: parsing, then `${env.NAME}` substitution.

1. `parse_document` parses YAML with PyYAML's C loader (the pure-Python SafeLoader when
   libyaml is absent) and requires a mapping of sections. Syntax errors, and a key given
   twice in one mapping, name the line and column (a `ConfigError` naming the file).
2. `substitute_env` replaces `${env.NAME}` and `${env.NAME:-default}` in every string
   value, before any type conversion, so `port: ${env.PORT}` works. `$${` is a literal `${`.
   In route fields that take expressions (`topic`, `filters[].key`, `filters[].headers.*`)
   other `${...}` are left for routing, and substituted values are escaped so they stay
   literal; anywhere else another `${...}` is an error (it is most likely a typo). Problems
   are `ConfigProblem`s located by path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from ssegate.config.problems import ConfigPath, ConfigProblem
from ssegate.errors import ConfigError

__all__ = ["parse_document", "substitute_env"]


def parse_document(text: str, source: str) -> dict[Any, Any]:
    """The YAML `text` as a mapping of sections; ConfigError (naming `source`) otherwise."""
    raw = _load_yaml(text, source)
    if raw is None:
        raise ConfigError(f"{source}: the configuration is empty (it needs kafka: and routes:)")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections (kafka:, routes:, ...), "
            f"got {_yaml_kind(raw)}"
        )
    return raw


def substitute_env(document: dict[Any, Any], environ: Mapping[str, str]) -> dict[Any, Any]:
    """A copy of `document` with `${env...}` substituted; ConfigProblem on the first error."""
    substituted: dict[Any, Any] = _Substitution(environ).walk(document, ())
    return substituted


# --- YAML ---------------------------------------------------------------------------------

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


# --- ${env.NAME} -----------------------------------------------------------------------

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV = re.compile(r"env\.([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_ENV_HELP = "write ${env.NAME} or ${env.NAME:-default}"


def _is_expression_field(path: ConfigPath) -> bool:
    """Route fields whose strings routing parses as expressions (a fact of the schema)."""
    if len(path) < 3 or path[0] != "routes" or not isinstance(path[1], int):
        return False
    rest = path[2:]
    if rest == ("topic",):
        return True
    if len(rest) < 3 or rest[0] != "filters" or not isinstance(rest[1], int):
        return False
    field = rest[2:]
    if field == ("key",) or (len(field) == 2 and field[0] == "headers"):
        return True
    # value: {path, equals}, or a list of them
    if field == ("value", "equals"):
        return True
    return (
        len(field) == 3
        and field[0] == "value"
        and isinstance(field[1], int)
        and field[2] == "equals"
    )


class _Substitution:
    """Walks the parsed document, returning a copy with `${env...}` substituted.

    Aliased nodes (`*anchor`) are substituted once per place in the schema, and a node that
    contains itself is an error rather than endless recursion.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.done: dict[tuple[int, tuple[str | int, ...]], Any] = {}
        self.active: set[int] = set()

    def walk(self, node: Any, path: ConfigPath) -> Any:
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
            raise ConfigProblem(path, "a YAML alias refers to the node that contains it")
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

    def expand(self, text: str, path: ConfigPath) -> str:
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
                raise ConfigProblem(path, f"malformed {text[found.start() :]!r} ({_ENV_HELP})")
            else:
                raise ConfigProblem(
                    path,
                    f"{token!r} is not available here (only ${{env.NAME}} is; "
                    "write $${ for a literal ${)",
                )
        pieces.append((text[position:], False))
        if not expression:
            return "".join(piece for piece, _ in pieces)
        return _join_as_expression(pieces, path)

    def lookup(self, token: str, body: str, path: ConfigPath) -> str:
        found = _ENV.fullmatch(body)
        if found is None or "${" in body:
            raise ConfigProblem(path, f"malformed {token!r} ({_ENV_HELP})")
        name, default = found.group(1), found.group(2)
        value = self.environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        raise ConfigProblem(path, f"environment variable {name} is not set")


def _join_as_expression(pieces: list[tuple[str, bool]], path: ConfigPath) -> str:
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
                raise ConfigProblem(
                    path, "a substituted value ending in '$' cannot precede an expression"
                )
            if after.startswith("{"):
                escaped += "$"
        out.append(escaped)
    return "".join(out)
