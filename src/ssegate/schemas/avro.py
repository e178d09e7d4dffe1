"""Avro records to JSON: compile an Avro schema once, then decode each record with fastavro
and encode it with msgspec.

Rules:

1. A schema is JSON text; its references are other schemas that define named types, each
   under the full name the schema uses (`com.example.Address`). References are loaded
   first, each after its own references, into one set of named types. A schema that does
   not parse, or names a type no one defines, is a `SchemaError` naming the type.
2. The payload is the Avro binary encoding of one datum of the writer's schema (the schema
   the record's id names), read with fastavro's `schemaless_reader`. A payload that ends
   early is `InvalidRecord("truncated")`; bytes left after the datum, or bytes the schema
   cannot read (a bad union branch, enum index, UTF-8 or logical value), are
   `InvalidRecord("schema-mismatch")`.
3. JSON mapping (docs/schemas.md, "JSON mapping"): records and maps are objects, arrays are
   arrays, enums their symbol, bytes and fixed standard padded base64; unions give the
   plain value, or with `unions: tagged` Avro's JSON-encoding form `{"<branch>": value}`
   (null stays `null`); `long` is a number, or a string with `int64: string`; `float` is
   the short decimal that reads back as the same 32-bit float (`json_float32`);
   NaN and infinities are the strings "NaN", "Infinity" and "-Infinity", as in Protobuf's
   JSON; decimal is a string with exactly `scale` digits after the point; uuid its
   canonical string; date `YYYY-MM-DD`; time-millis `HH:MM:SS.fff` and time-micros
   `HH:MM:SS.ffffff`; timestamp-millis/micros/nanos RFC 3339 in UTC with 3/6/9 fraction
   digits and `Z`; local-timestamp-* the same without `Z`. Other logical types are their
   underlying type. A time or timestamp outside what these forms can write (years 1 to
   9999, times within a day) is `InvalidRecord("schema-mismatch")`.
4. Speed: fastavro returns plain Python values that msgspec encodes as rule 3 wants, except
   for the types listed there as strings. For those, compiling builds a converter that
   touches only the fields that need it; a schema with none encodes the decoded datum as
   it is. Times and timestamps are read as plain integers (their logical type is removed
   from the schema given to fastavro) and formatted here, which is both exact and cheaper
   than building datetime objects first.
5. Unions whose branches need different handling (and, with `unions: tagged`, every union
   with two or more non-null branches) are given to fastavro with each non-null branch
   wrapped in a one-field record. A record of one field is encoded exactly as that field,
   so the bytes read the same, and fastavro then says which branch it read (the wrapper's
   name). Unions of null and one other type need no wrapping: the branch is known.
6. Recursive schemas (a record that can contain itself) bound their nesting: fastavro's
   compiled reader uses the C stack for each level, so payloads over `C_READER_MAX_BYTES`
   (each level takes at least one byte) go through its pure-Python reader, which stops at
   Python's recursion limit. Too deep is `InvalidRecord("too-deep")`. A record that
   contains itself with no union, array or map in between could never be written and
   would recurse forever: it is a `SchemaError`.
7. `to_json` raises `InvalidRecord` and nothing else, for any bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any, cast

import fastavro
import msgspec
from fastavro import _read_py as _fastavro_py

from ssegate.schemas.avro_convert import (
    KEPT_LOGICAL,
    RAW_LOGICAL,
    decimal_text,
    fixed_uuid_text,
    list_converter,
    map_converter,
    nullable,
    record_converter,
    tagged_single,
    wrapped_union,
)
from ssegate.schemas.mapping import (
    DEFAULT_MAPPING,
    JsonMapping,
    describe_schema,
    json_double,
    json_float32,
)
from ssegate.schemas.mapping import flatten_references as _flatten_references
from ssegate.schemas.schema import InvalidRecord, Schema, SchemaError

__all__ = ["C_READER_MAX_BYTES", "AvroDecoder", "compile_decoder"]

# Each level of a recursive datum costs fastavro's C reader about 2 KiB of C stack
# (measured: a 1 MiB thread stack overflows near 500 levels); 1,024 levels fit easily in the
# 8 MiB stacks that Linux gives the main thread and Python's threads.
C_READER_MAX_BYTES = 1024

Converter = Callable[[Any], Any]
_Reader = Callable[..., Any]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_RECORDS = frozenset({"record", "error"})
_BRANCH_PREFIX = "ssegate.union_branch_"  # a full name: no namespace is applied
_LOGICAL_KEYS = ("type", "logicalType", "precision", "scale")

# --- compiling ------------------------------------------------------------------------------


class _Compiler:
    """Walks fastavro's parsed schema once, producing the schema given to fastavro (rules 4
    and 5) and the converter of each type (None where msgspec's encoding is already right).
    """

    def __init__(self, named: dict[str, Any], mapping: JsonMapping) -> None:
        self.named = named
        self.long: Converter | None = str if mapping.int64 == "string" else None
        self.tagged = mapping.unions == "tagged"
        self.needs: dict[str, bool] = dict.fromkeys(named, False)
        self.converters: dict[str, Converter | None] = {}
        self.branches = 0
        self._settle_needs()

    # Which types need a converter: a fixed point over the named types, since records may
    # contain each other.
    def _settle_needs(self) -> None:
        changed = True
        while changed:
            changed = False
            for name, definition in self.named.items():
                if not self.needs[name] and self._named_needs(definition):
                    self.needs[name] = True
                    changed = True

    def _named_needs(self, definition: dict[str, Any]) -> bool:
        kind = definition["type"]
        if kind in _RECORDS:
            return any(self._needs(field["type"]) for field in definition["fields"])
        if kind == "fixed":
            return _fixed_converter(definition) is not None
        return False

    def _needs(self, schema: Any) -> bool:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self._primitive(schema) is not None
            return self.needs.get(schema, False)
        if isinstance(schema, list):
            return (
                self._union_wraps(schema)
                or any(self._needs(b) for b in schema)
                or (self.tagged and any(not _is_null(b) for b in schema))
            )
        kind = schema["type"]
        if not isinstance(kind, str):
            return self._needs(kind)
        if kind in _NAMED:
            return self.needs.get(schema["name"], False)
        if kind == "array":
            return self._needs(schema["items"])
        if kind == "map":
            return self._needs(schema["values"])
        if kind not in _PRIMITIVES:  # {"type": "com.example.Name"}
            return self._needs(kind)
        return self._logical(kind, schema)[1] is not None

    def _primitive(self, kind: str) -> Converter | None:
        if kind == "long":
            return self.long
        if kind == "double":
            return json_double
        if kind == "float":
            return json_float32
        return None

    def _logical(self, kind: str, schema: dict[str, Any]) -> tuple[Any, Converter | None]:
        """(the type fastavro reads, its converter) for a primitive with attributes."""
        logical = schema.get("logicalType")
        raw = RAW_LOGICAL.get((kind, logical)) if isinstance(logical, str) else None
        if raw is not None:
            return kind, raw
        if (kind, logical) in KEPT_LOGICAL:
            kept = {key: schema[key] for key in _LOGICAL_KEYS if key in schema}
            return kept, decimal_text if logical == "decimal" else None
        return kind, self._primitive(kind)

    def _union_wraps(self, branches: list[Any]) -> bool:
        others = [branch for branch in branches if not _is_null(branch)]
        if len(others) < 2:
            return False
        if self.tagged or any(self._needs(branch) for branch in others):
            return True
        # fastavro tags a union's records when it has two or more (rule 5): unwrap them.
        return sum(1 for branch in others if self._kind(branch) in _RECORDS) >= 2

    def _kind(self, schema: Any) -> str:
        if isinstance(schema, str):
            return schema if schema in _PRIMITIVES else str(self.named[schema]["type"])
        if isinstance(schema, list):
            return "union"
        kind = schema["type"]
        return self._kind(kind) if not isinstance(kind, str) or kind in self.named else kind

    def _tag(self, schema: Any) -> str:
        """A union branch's name in Avro's JSON encoding: full name or type name."""
        if isinstance(schema, str):
            return schema
        kind = schema["type"]
        if not isinstance(kind, str):
            return self._tag(kind)
        return str(schema["name"]) if kind in _NAMED else kind

    # The walk: (schema for fastavro, converter).
    def walk(self, schema: Any) -> tuple[Any, Converter | None]:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return schema, self._primitive(schema)
            if schema in self.converters:  # defined already (or being defined: recursion)
                return schema, self.converters[schema]
            return self._define(self.named[schema])
        if isinstance(schema, list):
            return self._union(schema)
        kind = schema["type"]
        if not isinstance(kind, str):
            return self.walk(kind)
        if kind in _NAMED:
            name = schema["name"]
            if name in self.converters:
                return name, self.converters[name]
            return self._define(self.named.get(name, schema))
        if kind == "array":
            items, convert = self.walk(schema["items"])
            return {"type": "array", "items": items}, convert and list_converter(convert)
        if kind == "map":
            values, convert = self.walk(schema["values"])
            return {"type": "map", "values": values}, convert and map_converter(convert)
        if kind not in _PRIMITIVES:
            return self.walk(kind)
        return self._logical(kind, schema)

    def _define(self, definition: dict[str, Any]) -> tuple[Any, Converter | None]:
        name = definition["name"]
        kind = definition["type"]
        if kind in _RECORDS:
            fields: list[tuple[str, Converter]] = []
            convert = record_converter(fields) if self.needs[name] else None
            self.converters[name] = convert
            written = []
            for field in definition["fields"]:
                field_type, field_convert = self.walk(field["type"])
                written.append({"name": field["name"], "type": field_type})
                if field_convert is not None:
                    fields.append((field["name"], field_convert))
            return {"type": "record", "name": name, "fields": written}, convert
        if kind == "enum":
            self.converters[name] = None
            return {"type": "enum", "name": name, "symbols": definition["symbols"]}, None
        written_fixed = {"type": "fixed", "name": name, "size": definition["size"]}
        fixed_convert = _fixed_converter(definition)
        if fixed_convert is decimal_text:  # fastavro makes the Decimal; rule 3 formats it
            for key in _LOGICAL_KEYS[1:]:
                if key in definition:
                    written_fixed[key] = definition[key]
        self.converters[name] = fixed_convert
        return written_fixed, fixed_convert

    def _union(self, branches: list[Any]) -> tuple[Any, Converter | None]:
        walked = [self.walk(branch) for branch in branches]
        if not self._union_wraps(branches):
            others = [(b, w) for b, w in zip(branches, walked, strict=True) if not _is_null(b)]
            written = [w[0] for w in walked]
            if not others:
                return written, None
            branch, (_, inner) = others[0]
            if self.tagged:
                return written, tagged_single(self._tag(branch), inner)
            if inner is None:
                return written, None
            has_null = len(others) < len(branches)
            return written, nullable(inner) if has_null else inner
        table: dict[str, tuple[str, Converter | None]] = {}
        wrapped: list[Any] = []
        for branch, (written_branch, inner) in zip(branches, walked, strict=True):
            if _is_null(branch):
                wrapped.append("null")
                continue
            self.branches += 1
            wrapper = f"{_BRANCH_PREFIX}{self.branches}"
            table[wrapper] = (self._tag(branch), inner)
            wrapped.append(
                {
                    "type": "record",
                    "name": wrapper,
                    "fields": [{"name": "v", "type": written_branch}],
                }
            )
        return wrapped, wrapped_union(table, self.tagged)


def _is_null(schema: Any) -> bool:
    return schema == "null" or (isinstance(schema, dict) and schema.get("type") == "null")


def _fixed_converter(definition: dict[str, Any]) -> Converter | None:
    logical = definition.get("logicalType")
    if logical == "decimal":
        return decimal_text
    if logical == "uuid" and definition.get("size") == 16:
        return fixed_uuid_text
    return None


def _recursion(named: dict[str, Any]) -> tuple[bool, str | None]:
    """(whether some named type can contain itself, the name of a record that contains
    itself through record fields alone, rule 6)."""

    def references(schema: Any, through_records_only: bool) -> Iterable[tuple[str, bool]]:
        # Yields (named type, reached through record fields alone) one level down.
        if isinstance(schema, str):
            if schema not in _PRIMITIVES:
                yield schema, through_records_only
        elif isinstance(schema, list):
            for branch in schema:
                yield from references(branch, False)
        else:
            kind = schema["type"]
            if not isinstance(kind, str):
                yield from references(kind, through_records_only)
            elif kind in _NAMED:
                yield schema["name"], through_records_only
            elif kind == "array":
                yield from references(schema["items"], False)
            elif kind == "map":
                yield from references(schema["values"], False)
            elif kind not in _PRIMITIVES:
                yield kind, through_records_only

    edges: dict[str, list[tuple[str, bool]]] = {}
    for name, definition in named.items():
        found: list[tuple[str, bool]] = []
        if definition["type"] in _RECORDS:
            for field in definition["fields"]:
                found.extend(references(field["type"], True))
        edges[name] = found

    def reachable(start: str, records_only: bool) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for target, direct in edges.get(stack.pop(), ()):
                if (direct or not records_only) and target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen

    recursive = any(name in reachable(name, False) for name in named)
    endless = next((name for name in named if name in reachable(name, True)), None)
    return recursive, endless


def _load(text: str, what: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise SchemaError(f"{what} is not JSON: {exc}") from exc


def _parse(schema: Schema) -> tuple[Any, dict[str, Any]]:
    """fastavro's parsed schema and every named type it and its references define."""
    what = describe_schema(schema)
    named: dict[str, Any] = {}
    for reference in _flatten_references(schema):
        source = _load(reference.schema.text, f"{what}: reference {reference.name!r}")
        _fastavro_parse(source, named, f"{what}: reference {reference.name!r}")
    parsed = _fastavro_parse(_load(schema.text, what), named, what)
    return parsed, named


def _fastavro_parse(source: Any, named: dict[str, Any], what: str) -> Any:
    if not isinstance(source, str | list | dict):
        raise SchemaError(f"{what} is not an Avro schema (a JSON string, array or object)")
    try:
        return fastavro.parse_schema(source, named, _write_hint=False)
    except fastavro.schema.UnknownType as exc:
        raise SchemaError(
            f"{what} does not compile: unknown type {exc.name!r} (neither a primitive type "
            "nor a named type the schema or its references define)"
        ) from exc
    except KeyError as exc:  # fastavro looks attributes up without checking first
        raise SchemaError(
            f"{what} does not compile: a type lacks its {exc.args[0]!r} attribute"
        ) from exc
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise SchemaError(f"{what} does not compile: {exc}") from exc


class AvroDecoder:
    """One compiled Avro schema (rules 2 to 7); see `compile_decoder`."""

    __slots__ = ("_convert", "_describe", "_names", "_read", "_recursive", "_schema")

    def __init__(
        self,
        schema: Any,
        convert: Converter | None,
        *,
        names: bool,
        recursive: bool,
        describe: str,
    ) -> None:
        self._schema = schema
        self._convert = convert
        # fastavro's return_record_name costs about as much as the rest of a read
        # (measured), so it is asked for only when some union was wrapped (rule 5).
        self._names = names
        self._recursive = recursive
        self._describe = describe
        self._read = cast(_Reader, fastavro.schemaless_reader)

    def __repr__(self) -> str:
        return f"<AvroDecoder {self._describe}>"

    def to_json(self, value: bytes, start: int, indexes: tuple[int, ...] | None) -> bytes:
        # BytesIO shares `value`'s buffer (no copy): 0.34 us with the seek, against 0.46 us for
        # a slice and 0.89 us for a memoryview (measured)
        stream = io.BytesIO(value)
        stream.seek(start)
        read = self._read
        if self._recursive and len(value) - start > C_READER_MAX_BYTES:
            read = _fastavro_py.schemaless_reader
        try:
            # return_record_name(_override): a union's records come back tagged only
            # where the union has two or more of them: the wrapped branches (rule 5).
            datum = read(stream, self._schema, None, self._names, self._names)
            end = stream.tell()
            if end == len(value):
                if self._convert is not None:
                    datum = self._convert(datum)
                return _encode(datum)
        except EOFError:
            raise InvalidRecord(
                "truncated", f"{self._describe}: the payload ends inside the record"
            ) from None
        except RecursionError:
            raise InvalidRecord(
                "too-deep", f"{self._describe}: the record nests too deeply to decode"
            ) from None
        except IndexError as exc:
            # fastavro's compiled reader indexes past the end of a varint cut off by the
            # end of the value (whose last byte then says "more follows"), and past an
            # enum's symbols or a union's branches for a bad index.
            if stream.tell() >= len(value) and value[-1] >= 0x80:
                raise InvalidRecord(
                    "truncated", f"{self._describe}: the payload ends inside the record"
                ) from None
            raise self._mismatch(exc) from None
        except Exception as exc:  # fastavro and the converters raise many types (rule 7)
            raise self._mismatch(exc) from None
        raise InvalidRecord(
            "schema-mismatch",
            f"{self._describe}: {len(value) - end} bytes follow the record",
        )

    def _mismatch(self, exc: Exception) -> InvalidRecord:
        return InvalidRecord(
            "schema-mismatch",
            f"{self._describe}: the payload does not match the schema "
            f"({type(exc).__name__}: {str(exc)[:80]})",
        )


_encode = msgspec.json.Encoder().encode


def compile_decoder(
    schema: Schema, mapping: JsonMapping = DEFAULT_MAPPING, message: str | None = None
) -> AvroDecoder:
    """Compile an Avro `schema` (rule 1) into a decoder. `message` is for Protobuf and is
    ignored. Raises `SchemaError`."""
    what = describe_schema(schema)
    parsed, named = _parse(schema)
    recursive, endless = _recursion(named)
    if endless is not None:
        raise SchemaError(
            f"{what}: record {endless!r} contains itself with no union, array or map in "
            "between, so no value of it can be written"
        )
    try:
        compiler = _Compiler(named, mapping)
        written, convert = compiler.walk(parsed)
        reader_schema = fastavro.parse_schema(written, {})
    except SchemaError as exc:
        raise SchemaError(f"{what} does not compile: {exc}") from exc
    except Exception as exc:  # a shape rule 5's rewrite did not expect: report, not crash
        raise SchemaError(f"{what} does not compile: {type(exc).__name__}: {exc}") from exc
    return AvroDecoder(
        reader_schema, convert, names=compiler.branches > 0, recursive=recursive, describe=what
    )
