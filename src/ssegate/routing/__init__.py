"""Routing: path templates, `${params.name}` expressions, filters and the route table.

Sans-I/O and free of logging: values in, values or declared errors out. The wiring
(`ssegate.wiring`) compiles each configured route with `compile_route`; the HTTP layer
asks a `Router` for the route and parameters of a request path, then `route.resolve(params)`
for the topic and canonical filters that key a subscription group. Routing may import
`ssegate.config` and `ssegate.kafka.eventid` (layers below it), never the reverse.

Errors (see `ssegate.errors`): `TemplateError`, `ExpressionError` and `RouteError` are
`RouteConfigError`s; `TopicNameError` is a `RequestError`. All are also ValueErrors.
"""

from __future__ import annotations

from ssegate.routing.expressions import Expression, ExpressionError, Reference
from ssegate.routing.filters import (
    FilterItemTemplate,
    FilterTemplate,
    ResolvedFilter,
    ResolvedFilters,
    canonicalize,
    index_keys,
    matches,
)
from ssegate.routing.router import (
    RESERVED_PATHS,
    CompiledRoute,
    RouteError,
    Router,
    StartPolicy,
    TopicNameError,
    compile_route,
    is_valid_topic_name,
)
from ssegate.routing.template import PathTemplate, TemplateError

__all__ = [
    "RESERVED_PATHS",
    "CompiledRoute",
    "Expression",
    "ExpressionError",
    "FilterItemTemplate",
    "FilterTemplate",
    "PathTemplate",
    "Reference",
    "ResolvedFilter",
    "ResolvedFilters",
    "RouteError",
    "Router",
    "StartPolicy",
    "TemplateError",
    "TopicNameError",
    "canonicalize",
    "compile_route",
    "index_keys",
    "is_valid_topic_name",
    "matches",
]
