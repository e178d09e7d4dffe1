"""The errors ssegate raises, under one root.

    SsegateError                    anything ssegate reports to its user
    ├── ConfigError                 a configuration file or option is wrong (exit status 2)
    │   ├── ConfigProblem           config.problems: a located problem, before the file is named
    │   └── RouteConfigError        a route's definition does not compile (also a ValueError)
    │       ├── RouteError          routing.router: names the wrong field within the route
    │       ├── TemplateError       routing.template: a malformed path template
    │       └── ExpressionError     routing.expressions: a malformed `${...}`, or no value
    ├── RequestError                a client's request cannot be served as asked (ValueError)
    │   ├── TopicNameError          routing.router: parameters make no valid topic (404)
    │   ├── EventIdError            kafka.eventid: a Last-Event-ID that does not decode
    │   ├── SinceError              subscription: a `?since=` that is no time (400)
    │   └── TokenError              guard.jwt: an access token that does not verify (401)
    ├── KeySetError                 guard.keys: a JWK or JWKS that cannot be used
    ├── SchemaError                 schemas.schema: a schema that does not parse or compile
    ├── CatalogUnavailable          schemas.schema: a registry that cannot be asked now
    ├── UnknownSchema               schemas.schema: a registry without that id or subject
    ├── InvalidRecord               schemas.schema: a record its model refuses (a reason)
    ├── DevRegistryError            devregistry: the development registry cannot start
    └── DevKafkaError               the local development broker cannot be fetched or started
        ├── JavaNotFound            no usable `java` (missing, or older than 17)
        ├── MavenError              `mvn` is missing, or fetching the broker jars failed
        ├── PortInUse               the requested broker port is taken
        └── BrokerExited            the broker process died while starting

Each error's message is written for the person at the terminal: what went wrong, and
what to do about it. Foreign exceptions are translated at the edge of the package
that calls the library, and raised `from` the original. Classes that callers also catch
as `ValueError` keep it as a second base. Modules define their own leaves and import the
bases from here; this module imports nothing of ssegate.

Left outside the tree on purpose: `http.h1`'s private `_HeadersTooLarge`/`_BodyTooLarge`
(control flow inside the parser), `fanout.subscriber.InvalidTransition` (a `RuntimeError`
only a bug raises: a move outside the subscriber's state table), and the plain
`ValueError`s that flag a programming error (the `sse.wire` encoders, metric labels, ring
bounds, `kafka.eventid`'s encoder ranges) or follow msgspec's `dec_hook` protocol
(`config.convert.parse_duration`/`parse_size`).
"""

from __future__ import annotations


class SsegateError(Exception):
    """Anything ssegate reports to its user; `exit_status` is the process exit code."""

    exit_status = 1


class ConfigError(SsegateError):
    """A configuration file or command-line option is wrong."""

    exit_status = 2


class RouteConfigError(ConfigError, ValueError):
    """A route's definition (path template, topic, filters) cannot be compiled."""


class RequestError(SsegateError, ValueError):
    """A client's request cannot be served as asked (the gateway answers or falls back)."""


class DevKafkaError(SsegateError):
    """The local development broker cannot be fetched, started or stopped."""


class JavaNotFound(DevKafkaError):
    """No usable `java`: missing from PATH and JAVA_HOME, or older than 17."""


class MavenError(DevKafkaError):
    """`mvn` is missing, or fetching the broker jars from Maven Central failed."""


class PortInUse(DevKafkaError):
    """The requested broker port on 127.0.0.1 is already taken."""


class BrokerExited(DevKafkaError):
    """The broker process exited before it answered a metadata request."""
