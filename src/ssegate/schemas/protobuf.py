"""Protobuf records to JSON: compile .proto text once with protoc, then parse each record with
the upb runtime and convert it with a converter compiled per message type.

Rules:

1. A schema is .proto text (or, 1b, a base64 FileDescriptorProto, as confluent-kafka's
   Python serializer registers it: then it and its references load without protoc); its
   references are the files it imports, each under the path
   its `import` statement uses (`other/address.proto`), with their own references. Google's
   well-known types (`google/protobuf/*.proto`) come with the compiler: references under
   that prefix are skipped, so a registry that lists them does no harm. A reference path
   that is absolute or climbs out (`..`) is a `SchemaError`.
2. Compiling runs grpcio-tools' protoc in a child process over the files written to a
   temporary directory, giving a FileDescriptorSet; protoc's own message is the
   `SchemaError`'s. A child process keeps protoc's stderr and grpc_tools' import hooks out
   of the gateway's process. It takes about 0.3 s, so `compile_decoder` blocks: call it
   off the event loop. The set is cached by content (the texts and paths), so each
   schema is compiled once per process whatever ids and subjects name it.
3. Each compiled schema gets a private DescriptorPool, so two schemas that declare the same
   package and message names do not clash.
4. The message is chosen per record by the framing's message indexes (`schemas.framing`):
   an index path into the schema file's messages, then nested messages; `(0,)` is the
   first message. Records without indexes (framing `none`) use `message`, the full name
   given to `compile_decoder`, or the first message. Indexes naming no message are
   `InvalidRecord("message-index")`.
5. Bytes that do not parse as the message are `InvalidRecord("schema-mismatch")`; nesting
   beyond upb's limit of 100 levels too.
6. JSON mapping: Protobuf's canonical JSON (the ProtoJSON spec, as
   `json_format.MessageToDict` writes it), with these choices: field names as written in
   the .proto (`field_names: proto`, the default) or their JSON names (`json`); fields
   without presence are always written, with their default values, so clients see every
   field (`always_print_fields_with_no_presence`); fields with presence (messages,
   `optional`, oneof members) only when set, so a oneof gives only its set field; 64-bit
   integers as strings unless `int64: number`; enums by name (an unknown number of an open
   enum as the number); bytes as padded base64; float as its shortest 32-bit decimal;
   NaN and infinities as "NaN", "Infinity", "-Infinity"; map keys as strings; Timestamp
   as RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits; wrappers as their value (the
   int64 choice applies); Duration, FieldMask, Struct, Value, ListValue, Empty and Any as
   json_format writes them (inside an Any, canonical JSON throughout). Extensions and
   unknown fields are left out.
7. Speed: json_format walks descriptors per record (30 to 40 us for an 8-field message,
   measured); here the walk is done once per message type, into a list of (JSON name,
   field, converter) that `to_json` runs, and msgspec encodes the result. Tests check the
   output equals json_format's for the same messages.
8. `to_json` raises `InvalidRecord` and nothing else, for any bytes.
"""

from __future__ import annotations

import base64
import functools
import importlib
import operator
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec

# protobuf ships no type information; the objects used here are typed as Any.
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
)
from google.protobuf.descriptor import FieldDescriptor  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from ssegate.schemas.mapping import (
    DEFAULT_MAPPING,
    DIGITS3,
    JsonMapping,
    describe_schema,
    flatten_references,
    json_datetime,
    json_double,
    json_float32,
)
from ssegate.schemas.schema import InvalidRecord, Schema, SchemaError

__all__ = ["PROTOC_TIMEOUT", "ProtobufDecoder", "compile_decoder"]

# A compile takes about 0.3 s here, mostly the child starting Python; the bound only stops
# a wedged child.
PROTOC_TIMEOUT = 60.0
_CACHE_SIZE = 256
_WELL_KNOWN = "google/protobuf/"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")  # no spaces, braces or `;`: never .proto text

Converter = Callable[[Any], Any]
# (JSON name, field name, converter or None, has presence)
_Field = tuple[str, str, Converter | None, bool]

_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_DELEGATED = frozenset(
    f"google.protobuf.{name}"
    for name in ("Any", "Duration", "FieldMask", "Struct", "Value", "ListValue")
)


# --- compiling .proto text (rules 1 and 2) ----------------------------------------------------


def _check_path(name: str, what: str) -> None:
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise SchemaError(
            f"{what}: reference {name!r} is not a relative import path such as 'a/b.proto'"
        )


def _files(schema: Schema, what: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(the main file's path, every file as (path, text)) for protoc."""
    files: dict[str, str] = {}
    for reference in flatten_references(schema):
        _check_path(reference.name, what)
        if not reference.name.startswith(_WELL_KNOWN):
            files[reference.name] = reference.schema.text
    main = "schema.proto"
    number = 0
    while main in files:
        number += 1
        main = f"schema_{number}.proto"
    files[main] = schema.text
    return main, tuple(sorted(files.items()))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _descriptor_set(main: str, files: tuple[tuple[str, str], ...]) -> bytes:
    """protoc's FileDescriptorSet for `files` (rule 2); raises SchemaError with protoc's
    message. Cached: the arguments are the schema's whole content."""
    with tempfile.TemporaryDirectory(prefix="ssegate-proto-") as directory:
        root = Path(directory, "src")
        for name, text in files:
            path = root / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8", errors="surrogatepass")
            except OSError as exc:  # `a.proto` and `a.proto/b.proto`, say
                raise SchemaError(f"reference {name!r} cannot be written: {exc}") from exc
        output = Path(directory, "set.pb")
        # `python -m grpc_tools.protoc` adds the include path of the bundled
        # google/protobuf/*.proto itself, after ours.
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "--proto_path=.",
            f"--descriptor_set_out={output}",
            "--include_imports",
            main,
        ]
        try:
            result = subprocess.run(
                command, cwd=root, capture_output=True, timeout=PROTOC_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise SchemaError(f"protoc did not finish within {PROTOC_TIMEOUT:g} s") from None
        except OSError as exc:
            raise SchemaError(f"protoc could not be started: {exc}") from exc
        if result.returncode != 0 or not output.exists():
            said = result.stderr.decode("utf-8", "replace").strip().replace(directory, "")
            raise SchemaError(f"protoc: {said or f'exit status {result.returncode}'}")
        return output.read_bytes()


# --- converters (rule 6) ----------------------------------------------------------------------


def _enum(enum_type: Any) -> Converter:
    if enum_type.full_name == "google.protobuf.NullValue":
        return _null
    names = {value.number: value.name for value in enum_type.values}
    closed = enum_type.is_closed

    def convert(value: int) -> Any:
        name = names.get(value)
        if name is not None:
            return name
        if closed:  # json_format refuses it too; upb keeps such values as unknown fields
            raise ValueError("a closed enum holds a number it does not define")
        return value

    return convert


def _null(value: Any) -> None:
    return None


def _timestamp(message: Any) -> str:
    seconds = message.seconds
    nanos = message.nanos
    if not 0 <= nanos < 1_000_000_000:
        raise ValueError("a Timestamp's nanos are out of range")
    text = json_datetime(seconds)  # ValueError outside years 1 to 9999, as json_format
    if nanos == 0:
        return text + "Z"
    millis, rest = divmod(nanos, 1_000_000)
    if rest == 0:
        return f"{text}.{DIGITS3[millis]}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


_AS_LIST: Converter = operator.itemgetter(slice(None))  # container[:]: twice list()'s speed


def _repeated(item: Converter | None) -> Converter:
    if item is None:
        return _AS_LIST

    def convert(value: Any) -> list[Any]:
        return [item(element) for element in value]

    return convert


def _map_key(field: Any) -> Converter:
    if field.type == FieldDescriptor.TYPE_BOOL:
        return _bool_key
    return str


def _bool_key(value: bool) -> str:
    return "true" if value else "false"


def _map(key: Converter, value: Converter | None) -> Converter:
    if value is None:

        def plain(mapping: Any) -> dict[str, Any]:
            return {key(k): v for k, v in mapping.items()}

        return plain

    def convert(mapping: Any) -> dict[str, Any]:
        return {key(k): value(v) for k, v in mapping.items()}

    return convert


def _message_converter(fields: list[_Field]) -> Converter:
    # `fields` is filled after the converter exists, so a recursive message can use it.
    def convert(message: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name, field, presence in fields:
            if presence and not message.HasField(name):
                continue
            value = getattr(message, name)
            out[key] = value if field is None else field(value)
        return out

    return convert


class _Converters:
    """Builds the converter of each message type once (rule 7); recursion-safe."""

    def __init__(self, mapping: JsonMapping, pool: Any) -> None:
        self.int64: Converter | None = None if mapping.int64 == "number" else str
        self.json_names = mapping.field_names == "json"
        self.pool = pool
        self.messages: dict[str, Converter] = {}

    def message(self, descriptor: Any) -> Converter:
        name = descriptor.full_name
        known = self.messages.get(name)
        if known is not None:
            return known
        if name == "google.protobuf.Timestamp":
            convert: Converter = _timestamp
        elif name in _WRAPPERS:
            convert = self._wrapper(descriptor)
        elif name in _DELEGATED:
            convert = self._delegated()
        else:
            fields: list[_Field] = []
            convert = _message_converter(fields)
            self.messages[name] = convert
            for field in descriptor.fields:
                key = field.json_name if self.json_names else field.name
                fields.append((key, field.name, self.field(field), field.has_presence))
        self.messages[name] = convert
        return convert

    def _wrapper(self, descriptor: Any) -> Converter:
        inner = self.scalar(descriptor.fields_by_name["value"])
        if inner is None:
            return _wrapped_value
        return lambda message: inner(message.value)

    def _delegated(self) -> Converter:
        pool = self.pool
        proto_names = not self.json_names

        def convert(message: Any) -> Any:
            return json_format.MessageToDict(
                message,
                always_print_fields_with_no_presence=True,
                preserving_proto_field_name=proto_names,
                descriptor_pool=pool,
            )

        return convert

    def field(self, field: Any) -> Converter | None:
        if _is_repeated(field):
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                key_field = entry.fields_by_name["key"]
                return _map(_map_key(key_field), self.scalar(entry.fields_by_name["value"]))
            return _repeated(self.scalar(field))
        return self.scalar(field)

    def scalar(self, field: Any) -> Converter | None:
        """The converter of one value of `field` (an element, for a repeated field)."""
        kind = field.type
        if kind in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            return self.message(field.message_type)
        if kind == FieldDescriptor.TYPE_ENUM:
            return _enum(field.enum_type)
        if kind in _INT64_TYPES:
            return self.int64
        if kind == FieldDescriptor.TYPE_DOUBLE:
            return json_double
        if kind == FieldDescriptor.TYPE_FLOAT:
            return json_float32
        return None  # bool, string, 32-bit integers; bytes are base64 by msgspec


def _is_repeated(field: Any) -> bool:
    # protobuf 7 has only `is_repeated`; releases before 5.29 only `label`.
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        return bool(field.label == FieldDescriptor.LABEL_REPEATED)
    return bool(repeated)


def _wrapped_value(message: Any) -> Any:
    return message.value


# --- the decoder ------------------------------------------------------------------------------


class _Target:
    """One message type: how to parse it and convert it."""

    __slots__ = ("convert", "name", "parse")

    def __init__(self, descriptor: Any, converters: _Converters) -> None:
        self.name: str = descriptor.full_name
        self.parse: Callable[[Any], Any] = message_factory.GetMessageClass(descriptor).FromString
        self.convert = converters.message(descriptor)


class ProtobufDecoder:
    """One compiled .proto schema (rules 3 to 8); see `compile_decoder`."""

    __slots__ = ("_default", "_describe", "_pool", "_targets")

    def __init__(
        self, pool: Any, targets: dict[tuple[int, ...], _Target], default: _Target, describe: str
    ) -> None:
        self._pool = pool  # the classes' descriptors live in it
        self._targets = targets  # every message of the schema's file, by index path
        self._default = default
        self._describe = describe

    def __repr__(self) -> str:
        return f"<ProtobufDecoder {self._describe} {self._default.name}>"

    def to_json(self, value: bytes, start: int, indexes: tuple[int, ...] | None) -> bytes:
        target = self._default if indexes is None else self._targets.get(indexes)
        if target is None:
            raise InvalidRecord(
                "message-index",
                f"{self._describe}: the message indexes {list(indexes or ())} name no message",
            )
        try:
            message = target.parse(memoryview(value)[start:] if start else value)
            return _encode(target.convert(message))
        except DecodeError:
            raise InvalidRecord(
                "schema-mismatch",
                f"{self._describe}: the payload is not a valid {target.name} message",
            ) from None
        except RecursionError:
            raise InvalidRecord(
                "too-deep", f"{self._describe}: the record nests too deeply to convert"
            ) from None
        except Exception as exc:  # the converters and json_format raise several types
            raise InvalidRecord(
                "schema-mismatch",
                f"{self._describe}: the {target.name} message cannot be written as JSON "
                f"({type(exc).__name__}: {str(exc)[:80]})",
            ) from None


_encode = msgspec.json.Encoder().encode


def _index_paths(file: Any) -> dict[tuple[int, ...], str]:
    """Every message of `file` by its index path (rule 4) -> its full name."""
    paths: dict[tuple[int, ...], str] = {}

    def walk(messages: Any, scope: str, path: tuple[int, ...]) -> None:
        for index, message in enumerate(messages):
            name = f"{scope}.{message.name}" if scope else message.name
            paths[(*path, index)] = name
            walk(message.nested_type, name, (*path, index))

    walk(file.message_type, file.package, ())
    return paths


def compile_decoder(
    schema: Schema, mapping: JsonMapping = DEFAULT_MAPPING, message: str | None = None
) -> ProtobufDecoder:
    """Compile a .proto `schema` (rules 1 to 3) into a decoder; `message` names the message
    for records without indexes (rule 4). Raises `SchemaError`."""
    what = describe_schema(schema)
    given = _given_descriptors(schema)
    if given is not None:
        main, all_files = given
    else:
        main, files = _files(schema, what)
        try:
            serialized = _descriptor_set(main, files)
        except SchemaError as exc:
            raise SchemaError(f"{what} does not compile: {exc}") from exc
        all_files = list(descriptor_pb2.FileDescriptorSet.FromString(serialized).file)
    try:
        pool = descriptor_pool.DescriptorPool()
        for file in _in_dependency_order(all_files):
            pool.Add(file)
    except Exception as exc:  # protoc accepted it, so this is unexpected; say so
        raise SchemaError(f"{what}: its descriptors do not load: {exc}") from exc
    own = next(file for file in all_files if file.name == main)
    paths = _index_paths(own)
    if message is not None:
        default_name = _find_message(pool, own.package, message, what)
    elif (0,) in paths:
        default_name = paths[(0,)]
    else:
        raise SchemaError(f"{what} defines no message")
    try:
        # Every message is made ready now, so a shape the converters do not know is a
        # SchemaError here rather than a surprise on some later record.
        converters = _Converters(mapping, pool)
        by_name: dict[str, _Target] = {}
        for name in (default_name, *paths.values()):
            if name not in by_name:
                by_name[name] = _Target(pool.FindMessageTypeByName(name), converters)
    except Exception as exc:
        raise SchemaError(f"{what} does not compile: {type(exc).__name__}: {exc}") from exc
    targets = {path: by_name[name] for path, name in paths.items()}
    return ProtobufDecoder(pool, targets, by_name[default_name], what)


def _serialized(text: str) -> Any | None:
    """A FileDescriptorProto given as base64 (what confluent-kafka's Python serializer
    registers, and a Confluent registry's `format=serialized`), or None for .proto text."""
    if not text or not _BASE64.fullmatch(text):
        return None
    try:
        file = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text))
    except Exception:  # not a descriptor after all: let protoc say what is wrong
        return None
    return file if file.name else None


def _given_descriptors(schema: Schema) -> tuple[str, list[Any]] | None:
    """(the main file's name, every file) when the schema and all its references are
    serialized descriptors (rule 1b); None when any is .proto text. Well-known types the
    files import come from the protobuf runtime."""
    main = _serialized(schema.text)
    if main is None:
        return None
    files = {main.name: main}
    for reference in flatten_references(schema):
        if reference.name.startswith(_WELL_KNOWN):
            continue
        file = _serialized(reference.schema.text)
        if file is None:
            return None
        files[file.name] = file
    for file in list(files.values()):
        for dependency in file.dependency:
            if dependency.startswith(_WELL_KNOWN) and dependency not in files:
                known = _well_known(dependency)
                if known is not None:
                    files[dependency] = known
    return main.name, list(files.values())


def _well_known(name: str) -> Any | None:
    """The runtime's own descriptor of a well-known type's file (`google/protobuf/x.proto`)."""
    module = name.removesuffix(".proto").replace("/", ".") + "_pb2"
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return None
    file = descriptor_pb2.FileDescriptorProto()
    loaded.DESCRIPTOR.CopyToProto(file)
    return file


def _in_dependency_order(files: list[Any]) -> list[Any]:
    """`files` with each after the files it imports (a pool takes them in that order)."""
    by_name = {file.name: file for file in files}
    ordered: list[Any] = []
    done: set[str] = set()

    def visit(file: Any, path: tuple[str, ...]) -> None:
        if file.name in done or file.name in path:
            return
        for dependency in file.dependency:
            if dependency in by_name:
                visit(by_name[dependency], (*path, file.name))
        done.add(file.name)
        ordered.append(file)

    for file in files:
        visit(file, ())
    return ordered


def _find_message(pool: Any, package: str, message: str, what: str) -> str:
    for name in (message, f"{package}.{message}" if package else message):
        try:
            return str(pool.FindMessageTypeByName(name).full_name)
        except KeyError:
            continue
    raise SchemaError(f"{what} has no message {message!r}")
