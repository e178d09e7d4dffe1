"""Every exception class ssegate defines sits under `SsegateError` (see `ssegate.errors`)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ssegate
from ssegate.errors import RequestError, RouteConfigError, SsegateError

# Private control flow, never raised past their module (the parser's "stop reading"
# signals), and the one exception that only a bug raises.
CONTROL_FLOW = {
    "ssegate.http.h1._HeadersTooLarge",
    "ssegate.http.h1._BodyTooLarge",
    # A bug, not a user's problem: the subscriber's state table was not followed.
    "ssegate.fanout.subscriber.InvalidTransition",
}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(ssegate.__path__, prefix="ssegate."):
        if module_info.name.endswith(".__main__"):  # runs the command line on import
            continue
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_exception_class_is_an_ssegate_error() -> None:
    classes = _exception_classes()
    assert "ssegate.routing.router.RouteError" in classes  # the walk reaches subpackages
    outside = sorted(
        name
        for name, cls in classes.items()
        if not issubclass(cls, SsegateError) and name not in CONTROL_FLOW
    )
    assert outside == []


def test_the_allow_list_names_classes_that_still_exist() -> None:
    assert set(_exception_classes()) >= CONTROL_FLOW


def test_errors_callers_catch_as_value_error_keep_that_base() -> None:
    from ssegate.kafka.eventid import EventIdError
    from ssegate.routing import ExpressionError, RouteError, TemplateError, TopicNameError
    from ssegate.subscription import SinceError

    for request_error in (TopicNameError, EventIdError, SinceError):
        assert issubclass(request_error, RequestError)
        assert issubclass(request_error, ValueError)
    for route_error in (RouteError, TemplateError, ExpressionError):
        assert issubclass(route_error, RouteConfigError)
        assert issubclass(route_error, ValueError)
