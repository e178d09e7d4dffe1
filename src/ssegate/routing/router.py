"""Routes: compiling a configured route, and finding the route for a request path.

`compile_route` turns one `RouteConfig` into a `CompiledRoute` or raises `RouteError` whose
`path` says which field is wrong (`("filters", 0, "headers", "tag")`); the wiring prefixes
it with `routes[i]`. The route's stream settings are compiled once too: `id_form` (an
`IdForm`) and `start` (a `StartPolicy`). `Router.match` returns the first route, in
declaration order, whose template matches. Sans-I/O: no logging, no I/O.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from ssegate.config.problems import ConfigPath, format_path
from ssegate.errors import RequestError, RouteConfigError
from ssegate.kafka.eventid import IdForm
from ssegate.routing.expressions import Expression, ExpressionError
from ssegate.routing.filters import FilterTemplate, ResolvedFilters
from ssegate.routing.template import PathTemplate, TemplateError
from ssegate.sources.names import modeled_name

if TYPE_CHECKING:
    from ssegate.config.schema import ModelConfig, RouteConfig

__all__ = [
    "RESERVED_PATHS",
    "CompiledRoute",
    "RouteError",
    "Router",
    "StartPolicy",
    "TopicNameError",
    "compile_route",
    "is_valid_topic_name",
]

# Built-in endpoints the HTTP layer answers itself; a route or static file may not use them.
RESERVED_PATHS: tuple[str, ...] = ("/health", "/ready", "/metrics")

# Namespaces that will exist once the JWT guard lands.
_NOT_YET = frozenset({"guard", "identity"})
_CAN_USE = (
    "(routes can use ${params.name}, ${tls.client.<field>} and ${guarded['<guard>'].identity})"
)
# The client certificate's fields a route may use as `${tls.client.<field>}`; the HTTP
# layer gives a request these values (`http.tls.client_certificate_values`).
CLIENT_FIELDS = ("cn", "o", "ou", "dns", "email", "uri", "serial", "fingerprint")

# Kafka's rule (clients/.../internals/Topic.java): 1 to 249 of [a-zA-Z0-9._-], not . or ..
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_TOPIC_CHARS = re.compile(r"[a-zA-Z0-9._-]*")
_TOPIC_RULE = "1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and not '.' or '..'"


def is_valid_topic_name(name: str) -> bool:
    """True when Kafka would accept `name` as a topic name."""
    return _TOPIC.fullmatch(name) is not None and name not in (".", "..")


class RouteError(RouteConfigError):
    """A route's configuration is wrong; `path` locates the field within the route."""

    def __init__(self, path: ConfigPath, message: str) -> None:
        super().__init__(f"{format_path(path)}: {message}")
        self.path = path
        self.message = message


class TopicNameError(RequestError):
    """A request's parameters produce a topic Kafka would reject (answer 404)."""


class StartPolicy(enum.Enum):
    """Where a client without a usable event id begins (the route's `start`)."""

    EARLIEST = "earliest"  # the oldest record the topic still holds, then live
    LATEST = "latest"  # records produced after the client connected
    COMPACTED = "compacted"  # the latest value of each key, then live


@dataclass(frozen=True)
class CompiledRoute:
    """One route, ready to serve: `path` is the template text (the metrics label)."""

    index: int
    path: str
    template: PathTemplate
    topic: Expression
    filters: FilterTemplate
    id_form: IdForm
    start: StartPolicy
    # Its topic or filters use the client certificate (`${tls.client.<field>}`).
    client_certificate: bool = False
    # The key of its value model (`model_key`), or None: its topic is read under a modeled
    # source name (`ssegate.sources.names`); and whether invalid records are delivered.
    model: str | None = None
    deliver_invalid: bool = False

    def resolve(self, params: Mapping[str, str]) -> tuple[str, ResolvedFilters]:
        """The topic and canonical filters for a request's path parameters.

        A topic built from parameters must be a valid Kafka topic name and may not start
        with `__` (Kafka's internal topics); otherwise TopicNameError.
        """
        topic = self.topic.resolve(params)
        if not self.topic.is_literal and (not is_valid_topic_name(topic) or topic.startswith("__")):
            raise TopicNameError(f"{topic!r} is not a topic this route serves")
        return modeled_name(topic, self.model), self.filters.resolve(params)


class Router:
    """The routes in declaration order; the first whose template matches wins."""

    __slots__ = ("routes",)

    def __init__(self, routes: Sequence[CompiledRoute]) -> None:
        self.routes = tuple(routes)

    def match(self, path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
        for route in self.routes:
            params = route.template.match(path)
            if params is not None:
                return route, params
        return None

    def __repr__(self) -> str:
        return f"<Router routes={len(self.routes)}>"


def compile_route(
    index: int, cfg: RouteConfig, guards: Mapping[str, frozenset[str]] | None = None
) -> CompiledRoute:
    """Compile one configured route; RouteError names the first wrong field. `guards`
    names the configured guards with their attributes, for `${guarded['<guard>'].…}`."""
    guarded = {name: (guards or {}).get(name, frozenset()) for name in cfg.guarded}
    try:
        template = PathTemplate(cfg.path)
    except TemplateError as exc:
        raise RouteError(("path",), str(exc)) from exc
    try:
        topic = Expression.parse(cfg.topic)
    except ExpressionError as exc:
        raise RouteError(("topic",), _parse_message(exc)) from exc
    _check_references(("topic",), topic, template, guarded)
    _check_topic(topic)
    try:
        filters = FilterTemplate.compile(cfg.filters)
    except ExpressionError as exc:
        raise RouteError(("filters", *exc.location), _parse_message(exc)) from exc
    expressions = [topic]
    for location, expression in filters.expressions():
        _check_references(("filters", *location), expression, template, guarded)
        expressions.append(expression)
    uses_certificate = any(namespace == "tls" for e in expressions for namespace, _ in e.references)
    return CompiledRoute(
        index=index,
        path=cfg.path,
        template=template,
        topic=topic,
        filters=filters,
        id_form=IdForm(cfg.event_id),
        start=StartPolicy(cfg.start),
        client_certificate=uses_certificate,
        model=model_key(cfg.value, cfg.topic) if cfg.value is not None else None,
        deliver_invalid=cfg.on_invalid != "skip",
    )


def model_key(model: ModelConfig, topic: str) -> str:
    """A short name for a model's configuration on a topic (template): routes whose models
    are configured alike share one, and so one reader and one conversion per record."""
    digest = hashlib.sha256(msgspec.json.encode([model, topic])).hexdigest()
    return f"m{digest[:10]}"


def _parse_message(exc: ExpressionError) -> str:
    body = exc.expression[2:]
    if any(body.startswith(namespace) for namespace in _NOT_YET):
        return f"{exc.expression!r} is not supported yet " + _CAN_USE
    return exc.message


def _check_references(
    location: tuple[str | int, ...],
    expression: Expression,
    template: PathTemplate,
    guarded: Mapping[str, frozenset[str]],
) -> None:
    """Every reference has a value: a parameter the path captures, a client certificate
    field, or the identity or an attribute of a guard the route is guarded by (`guarded`:
    its guards with their attribute names)."""
    for part in expression.parts:
        if isinstance(part, str):
            continue
        namespace, name = part
        if namespace == "params":
            if name not in template.params:
                captured = (
                    f"the path captures: {', '.join(template.params)}"
                    if template.params
                    else "the path captures no parameters"
                )
                raise RouteError(location, f"unknown parameter {name!r} ({captured})")
        elif namespace == "guarded":
            guard, _, what = name.partition(".")
            reference = f"${{guarded['{guard}'].{what}}}"
            if guard not in guarded:
                raise RouteError(
                    location,
                    f"{reference!r} needs the route guarded by {guard!r} "
                    f"(guarded: {{{guard}: [roles]}})",
                )
            attribute = what.removeprefix("attributes.")
            if attribute != what and attribute not in guarded[guard]:
                names = ", ".join(sorted(guarded[guard])) or "none"
                raise RouteError(
                    location,
                    f"guard {guard!r} has no attribute {attribute!r} (its attributes: {names})",
                )
        elif namespace == "tls":
            field = name.removeprefix("client.")
            if field == name or field not in CLIENT_FIELDS:
                raise RouteError(
                    location,
                    f"unknown field '${{tls.{name}}}' (the client certificate's are "
                    + ", ".join(f"tls.client.{f}" for f in CLIENT_FIELDS)
                    + ")",
                )
        elif namespace in _NOT_YET:
            raise RouteError(
                location,
                f"'${{{namespace}.{name}}}' is not supported yet " + _CAN_USE,
            )
        else:
            raise RouteError(
                location,
                f"unknown namespace {namespace!r} in '${{{namespace}.{name}}}' " + _CAN_USE,
            )


def _check_topic(topic: Expression) -> None:
    if topic.is_literal:
        name = topic.resolve({})
        if not is_valid_topic_name(name):
            raise RouteError(
                ("topic",), f"{name!r} is not a valid Kafka topic name ({_TOPIC_RULE})"
            )
        return
    literal = "".join(part for part in topic.parts if isinstance(part, str))
    if not _TOPIC_CHARS.fullmatch(literal) or len(literal) >= 249:
        raise RouteError(
            ("topic",),
            f"{topic.text!r} can never be a valid Kafka topic name ({_TOPIC_RULE})",
        )
