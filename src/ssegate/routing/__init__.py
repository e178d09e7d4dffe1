"""Routing: path templates, `${params.name}` expressions, filters and the route table.

Sans-I/O and free of logging: values in, values or declared errors out. The loader
(`ssegate.config`) compiles each configured route with `compile_route`; the HTTP layer
asks a `Router` for the route and parameters of a request path, then `route.resolve(params)`
for the topic and canonical filters that key a subscription group.

Errors: `TemplateError`, `ExpressionError`, `RouteError` and `TopicNameError`, all
subclasses of ValueError.
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
    TopicNameError,
    compile_route,
    format_path,
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
    "TemplateError",
    "TopicNameError",
    "canonicalize",
    "compile_route",
    "format_path",
    "index_keys",
    "is_valid_topic_name",
    "matches",
]
