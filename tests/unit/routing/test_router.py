"""Compiling routes, their errors with paths, resolving, and the router's order."""

from __future__ import annotations

from typing import Literal

import pytest

from ssegate.config.problems import format_path
from ssegate.config.schema import FilterConfig, RouteConfig
from ssegate.kafka.eventid import IdForm
from ssegate.routing import (
    CompiledRoute,
    ResolvedFilter,
    RouteError,
    Router,
    StartPolicy,
    TopicNameError,
    compile_route,
    is_valid_topic_name,
)

DEMO = RouteConfig(
    path="/events/{symbol}/{exchange}",
    topic="events",
    filters=[FilterConfig(key="${params.symbol}", headers={"exchange": "${params.exchange}"})],
)


def test_compile_demo_route() -> None:
    route = compile_route(3, DEMO)
    assert isinstance(route, CompiledRoute)
    assert route.index == 3
    assert route.path == "/events/{symbol}/{exchange}"
    assert route.template.params == ("symbol", "exchange")
    assert route.topic.is_literal
    assert route.id_form is IdForm.ETAG
    assert route.start is StartPolicy.EARLIEST
    assert route.resolve({"symbol": "BRK", "exchange": "NYSE"}) == (
        "events",
        (ResolvedFilter(b"BRK", (("exchange", b"NYSE"),)),),
    )


def test_topic_from_parameters() -> None:
    route = compile_route(0, RouteConfig(path="/{topic}", topic="t.${params.topic}"))
    assert route.resolve({"topic": "a_b-1"}) == ("t.a_b-1", ())
    with pytest.raises(TopicNameError, match="is not a topic this route serves"):
        route.resolve({"topic": "a b"})
    with pytest.raises(TopicNameError):
        route.resolve({"topic": "x" * 248})


def test_parameters_may_not_reach_internal_topics() -> None:
    route = compile_route(0, RouteConfig(path="/{topic}", topic="${params.topic}"))
    with pytest.raises(TopicNameError):
        route.resolve({"topic": "__consumer_offsets"})
    with pytest.raises(TopicNameError):
        route.resolve({"topic": ".."})
    assert route.resolve({"topic": "_one"}) == ("_one", ())


@pytest.mark.parametrize(
    ("cfg", "path", "message"),
    [
        (
            RouteConfig(path="events", topic="t"),
            ("path",),
            "a path template must start with '/', got 'events'",
        ),
        (
            RouteConfig(path="/{a}", topic="${params.b}"),
            ("topic",),
            "unknown parameter 'b' (the path captures: a)",
        ),
        (
            RouteConfig(path="/a", topic="t", filters=[FilterConfig(key="${params.b}")]),
            ("filters", 0, "key"),
            "unknown parameter 'b' (the path captures no parameters)",
        ),
        (
            RouteConfig(
                path="/events/{symbol}/{exchange}",
                topic="t",
                filters=[FilterConfig(), FilterConfig(headers={"x": "1", "tag": "${params.tagg}"})],
            ),
            ("filters", 1, "headers", "tag"),
            "unknown parameter 'tagg' (the path captures: symbol, exchange)",
        ),
        (
            RouteConfig(path="/a", topic="t-${guard.identity}"),
            ("topic",),
            "'${guard.identity}' is not supported yet "
            "(routes can use ${params.name}, ${tls.client.<field>} and "
            "${guarded['<guard>'].identity})",
        ),
        (
            RouteConfig(path="/a", topic="t", filters=[FilterConfig(key="${identity.sub}")]),
            ("filters", 0, "key"),
            "'${identity.sub}' is not supported yet "
            "(routes can use ${params.name}, ${tls.client.<field>} and "
            "${guarded['<guard>'].identity})",
        ),
        (
            RouteConfig(path="/a", topic="${guarded['jwt0'].identity}"),
            ("topic",),
            "\"${guarded['jwt0'].identity}\" needs the route guarded by 'jwt0' "
            "(guarded: {jwt0: [roles]})",
        ),
        (
            RouteConfig(path="/a", topic="${foo.bar}"),
            ("topic",),
            "unknown namespace 'foo' in '${foo.bar}' "
            "(routes can use ${params.name}, ${tls.client.<field>} and "
            "${guarded['<guard>'].identity})",
        ),
        (
            RouteConfig(path="/a", topic="${env.X}"),
            ("topic",),
            "unknown namespace 'env' in '${env.X}' "
            "(routes can use ${params.name}, ${tls.client.<field>} and "
            "${guarded['<guard>'].identity})",
        ),
        (
            RouteConfig(path="/{a}", topic="${params.a.b}"),
            ("topic",),
            "unknown parameter 'a.b' (the path captures: a)",
        ),
        (
            RouteConfig(path="/a", topic="t", filters=[FilterConfig(key="${tls.client.name}")]),
            ("filters", 0, "key"),
            "unknown field '${tls.client.name}' (the client certificate's are tls.client.cn, "
            "tls.client.o, tls.client.ou, tls.client.dns, tls.client.email, tls.client.uri, "
            "tls.client.serial, tls.client.fingerprint)",
        ),
        (
            RouteConfig(path="/a", topic="${tls.cn}"),
            ("topic",),
            "unknown field '${tls.cn}' (the client certificate's are tls.client.cn, "
            "tls.client.o, tls.client.ou, tls.client.dns, tls.client.email, tls.client.uri, "
            "tls.client.serial, tls.client.fingerprint)",
        ),
        (
            RouteConfig(path="/a", topic="${params}"),
            ("topic",),
            "malformed expression '${params}' (expected ${namespace.name}; "
            "write $${ for a literal ${)",
        ),
        (
            RouteConfig(path="/a", topic="t", filters=[FilterConfig(key="${params.a")]),
            ("filters", 0, "key"),
            "malformed expression '${params.a' (no closing '}'; write $${ for a literal ${)",
        ),
        (
            RouteConfig(path="/a", topic="t", filters=[FilterConfig(headers={"${x}": "v"})]),
            ("filters", 0, "headers"),
            "header name '${x}' cannot hold an expression (only values can)",
        ),
    ],
)
def test_compile_errors(cfg: RouteConfig, path: tuple[str | int, ...], message: str) -> None:
    with pytest.raises(RouteError) as caught:
        compile_route(0, cfg)
    assert caught.value.path == path
    assert caught.value.message == message
    assert str(caught.value) == f"{format_path(path)}: {message}"


RULE = "1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and not '.' or '..'"


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("", f"'' is not a valid Kafka topic name ({RULE})"),
        (".", f"'.' is not a valid Kafka topic name ({RULE})"),
        ("..", f"'..' is not a valid Kafka topic name ({RULE})"),
        ("a b", f"'a b' is not a valid Kafka topic name ({RULE})"),
        ("a/b", f"'a/b' is not a valid Kafka topic name ({RULE})"),
        ("é", f"'é' is not a valid Kafka topic name ({RULE})"),
        ("x" * 250, f"'{'x' * 250}' is not a valid Kafka topic name ({RULE})"),
        ("$${x}", f"'${{x}}' is not a valid Kafka topic name ({RULE})"),
        ("a b-${params.t}", f"'a b-${{params.t}}' can never be a valid Kafka topic name ({RULE})"),
        (
            "x" * 249 + "${params.t}",
            f"'{'x' * 249}${{params.t}}' can never be a valid Kafka topic name ({RULE})",
        ),
    ],
)
def test_topic_names(topic: str, message: str) -> None:
    with pytest.raises(RouteError) as caught:
        compile_route(0, RouteConfig(path="/{t}", topic=topic))
    assert caught.value.path == ("topic",)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("name", "valid"),
    [("a", True), ("x" * 249, True), ("x" * 250, False), ("a.b_c-D9", True), ("...", True)],
)
def test_is_valid_topic_name(name: str, valid: bool) -> None:
    assert is_valid_topic_name(name) is valid


def test_router_first_match_in_declaration_order_wins() -> None:
    routes = [
        compile_route(0, RouteConfig(path="/events/special/{exchange}", topic="special")),
        compile_route(1, RouteConfig(path="/events/{symbol}/{exchange}", topic="events")),
        compile_route(2, RouteConfig(path="/events/{symbol}", topic="short")),
    ]
    router = Router(routes)
    found = router.match("/events/special/NYSE")
    assert found is not None
    assert found[0].index == 0
    assert found[1] == {"exchange": "NYSE"}
    found = router.match("/events/BRK/NYSE")
    assert found is not None
    assert (found[0].index, found[1]) == (1, {"symbol": "BRK", "exchange": "NYSE"})
    found = router.match("/events/BRK")
    assert found is not None
    assert found[0].index == 2
    assert router.match("/events") is None
    assert router.match("/other/BRK/NYSE") is None
    assert repr(router) == "<Router routes=3>"
    # Reversed, the general route shadows the special one.
    reversed_router = Router(list(reversed(routes)))
    found = reversed_router.match("/events/special/NYSE")
    assert found is not None
    assert found[0].index == 1


@pytest.mark.parametrize(
    ("event_id", "start", "id_form", "policy"),
    [
        ("etag", "earliest", IdForm.ETAG, StartPolicy.EARLIEST),
        ("key", "latest", IdForm.KEY, StartPolicy.LATEST),
        ("etag", "compacted", IdForm.ETAG, StartPolicy.COMPACTED),
    ],
)
def test_stream_settings_are_compiled_once(
    event_id: Literal["etag", "key"],
    start: Literal["earliest", "latest", "compacted"],
    id_form: IdForm,
    policy: StartPolicy,
) -> None:
    route = compile_route(0, RouteConfig(path="/a", topic="t", event_id=event_id, start=start))
    assert (route.id_form, route.start) == (id_form, policy)
    assert route.start.value == start


def test_a_route_that_uses_the_client_certificate_says_so() -> None:
    uses = compile_route(
        0, RouteConfig(path="/a", topic="t", filters=[FilterConfig(key="${tls.client.cn}")])
    )
    assert uses.client_certificate
    assert uses.resolve({"tls.client.cn": "alice"})[1] == (ResolvedFilter(b"alice", ()),)
    assert not compile_route(0, RouteConfig(path="/{a}", topic="${params.a}")).client_certificate
