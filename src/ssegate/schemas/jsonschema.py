"""JSON records: check that a value is JSON and, with a schema, that it is valid; then pass
the record's own bytes through.

Rules:

1. A schema is JSON Schema text, validated with jsonschema-rs in the draft its `$schema`
   names (4, 6, 7, 2019-09 or 2020-12; 2020-12 when it names none). Formats are checked
   as each draft says (asserted in 4, 6 and 7, annotations only from 2019-09 on). A schema
   that is not JSON, names an unknown draft or is not a valid schema is a `SchemaError`.
2. References are other schemas under the name `$ref` uses (`address.json` or a full
   URL), with their own references; `$ref`s resolve to them by name, and, when the schema
   has an absolute `$id`, also relative to it. Nothing is ever fetched: a `$ref` to
   anything else is a `SchemaError` (`offline`), so a schema from a registry cannot make
   the gateway read files or call URLs.
3. The payload must be one JSON text in UTF-8 (RFC 8259): anything else (bad UTF-8, a
   byte order mark, trailing data, NaN, numbers beyond a double's range, a lone surrogate
   escape) is `InvalidRecord("not-json")`, nesting beyond the parser's limit
   `InvalidRecord("too-deep")`. Duplicate object keys are accepted and the last one
   counts, as in JavaScript's `JSON.parse`, so the validator checks what a browser sees;
   rejecting them would cost a second parse of every record.
4. A valid record is returned as the producer's bytes, minus surrounding whitespace: no
   re-encoding, so numbers, key order and escapes reach clients as written. JSON can hold
   line breaks only between tokens, where the SSE encoder's line split is harmless.
5. An invalid record is `InvalidRecord("schema-mismatch")` naming the first error's place
   as a JSON pointer and its message, with the record's values masked out of it.
6. `JsonOnlyDecoder` is rule 3 and 4 without a schema: "the value must be JSON".
7. `to_json` raises `InvalidRecord` and nothing else, for any bytes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import jsonschema_rs
import msgspec

from ssegate.schemas.mapping import (
    DEFAULT_MAPPING,
    JsonMapping,
    describe_schema,
    flatten_references,
)
from ssegate.schemas.schema import InvalidRecord, Schema, SchemaError

__all__ = ["JsonOnlyDecoder", "JsonSchemaDecoder", "compile_decoder"]

# What replaces record values in validation messages (rule 5).
_MASK = "the value"
_MAX_MESSAGE = 200
_WHITESPACE = b" \t\r\n"
_SPACES = frozenset(bytes([byte]) for byte in _WHITESPACE)
_MAX_POINTER = 100  # a pointer quotes the record's keys: enough to find the place
_decode = msgspec.json.decode


def _parse(value: bytes, start: int, describe: str) -> tuple[Any, bytes]:
    """(the decoded JSON, the record's bytes without surrounding whitespace): rule 3, 4."""
    text = value[start:] if start else value
    try:
        decoded = _decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec says what and where (a byte offset), never what the bytes were.
        raise InvalidRecord("not-json", f"{describe}: the value is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidRecord(
            "too-deep", f"{describe}: the value nests too deeply to parse"
        ) from None
    except Exception as exc:  # not expected from msgspec; rule 7 holds anyway
        raise InvalidRecord(
            "not-json", f"{describe}: the value is not JSON ({type(exc).__name__})"
        ) from None
    if text[:1] in _SPACES or text[-1:] in _SPACES:
        text = text.strip(_WHITESPACE)
    return decoded, text


class JsonOnlyDecoder:
    """Accepts any JSON text and passes it through (rule 6)."""

    __slots__ = ("_describe",)

    def __init__(self, describe: str = "JSON value") -> None:
        self._describe = describe

    def __repr__(self) -> str:
        return f"<JsonOnlyDecoder {self._describe}>"

    def to_json(self, value: bytes, start: int, indexes: tuple[int, ...] | None) -> bytes:
        return _parse(value, start, self._describe)[1]


class JsonSchemaDecoder:
    """One compiled JSON Schema (rules 3 to 5, 7); see `compile_decoder`."""

    __slots__ = ("_describe", "_validator")

    def __init__(self, validator: jsonschema_rs.Validator, describe: str) -> None:
        self._validator = validator
        self._describe = describe

    def __repr__(self) -> str:
        return f"<JsonSchemaDecoder {self._describe}>"

    def to_json(self, value: bytes, start: int, indexes: tuple[int, ...] | None) -> bytes:
        decoded, text = _parse(value, start, self._describe)
        try:
            if self._validator.is_valid(decoded):
                return text
            error = next(iter(self._validator.iter_errors(decoded)), None)
        except Exception as exc:  # jsonschema-rs on a value it cannot hold (rule 7)
            raise InvalidRecord(
                "schema-mismatch",
                f"{self._describe}: the value cannot be validated ({type(exc).__name__})",
            ) from None
        raise InvalidRecord("schema-mismatch", f"{self._describe}: {_explain(error)}")


def _explain(error: jsonschema_rs.ValidationError | None) -> str:
    if error is None:  # is_valid said no and iter_errors found nothing: not expected
        return "the value does not match the schema"
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    pointer = _pointer(error.instance_path)
    if len(pointer) > _MAX_POINTER:
        pointer = pointer[: _MAX_POINTER - 3] + "..."
    return f"at {pointer!r}: {message}" if pointer else f"at the top level: {message}"


def _pointer(path: list[str | int]) -> str:
    """An RFC 6901 JSON pointer ('' is the whole value)."""
    return "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in path)


def _load(text: str, what: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise SchemaError(f"{what} is not JSON: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def compile_decoder(
    schema: Schema, mapping: JsonMapping = DEFAULT_MAPPING, message: str | None = None
) -> JsonSchemaDecoder:
    """Compile a JSON Schema (rules 1 and 2) into a decoder. `mapping` and `message` do not
    apply to JSON records and are ignored. Raises `SchemaError`."""
    what = describe_schema(schema)
    root = _load(schema.text, what)
    if not isinstance(root, dict | bool):
        raise SchemaError(f"{what} is not a JSON Schema: it is neither an object nor a boolean")
    base = root.get("$id") if isinstance(root, dict) else None
    absolute_base = isinstance(base, str) and bool(urlsplit(base).scheme)
    resources: list[tuple[str, Any]] = []
    for reference in flatten_references(schema):
        contents = _load(reference.schema.text, f"{what}: reference {reference.name!r}")
        resources.append((reference.name, contents))
        if absolute_base and not urlsplit(reference.name).scheme:
            resources.append((urljoin(str(base), reference.name), contents))
    try:
        registry = jsonschema_rs.Registry(resources) if resources else None
    except Exception as exc:  # a reference that is not a schema
        raise SchemaError(f"{what}: its references do not load: {_first_line(exc)}") from exc
    try:
        validator = jsonschema_rs.validator_for(root, registry=registry, offline=True, mask=_MASK)
    except Exception as exc:  # jsonschema-rs raises ValidationError, ReferencingError, ...
        raise SchemaError(
            f"{what} does not compile: {_schema_problem(root, registry, exc)}"
        ) from exc
    return JsonSchemaDecoder(validator, what)


def _schema_problem(root: Any, registry: jsonschema_rs.Registry | None, exc: Exception) -> str:
    """What is wrong with a schema, with its own values shown: the mask that keeps record
    values out of messages (rule 5) also hides the schema's when the schema itself fails."""
    place = ""
    try:
        jsonschema_rs.validator_for(root, registry=registry, offline=True)
    except jsonschema_rs.ValidationError as unmasked:
        exc = unmasked
        if unmasked.instance_path:
            place = f"at {_pointer(unmasked.instance_path)!r}: "
    except Exception as other:  # the same failure, said by another exception type
        exc = other
    return place + _first_line(exc)
