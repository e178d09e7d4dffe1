"""The errors ssegate raises, under one root.

    SsegateError                    anything ssegate reports to its user
    ├── ConfigError                 a configuration file or option is wrong (exit status 2)
    └── DevKafkaError               the local development broker cannot be fetched or started
        ├── JavaNotFound            no usable `java` (missing, or older than 17)
        ├── MavenError              `mvn` is missing, or fetching the broker jars failed
        ├── PortInUse               the requested broker port is taken
        └── BrokerExited            the broker process died while starting

Each error's message is written for the person at the terminal: what went wrong, and
what to do about it. Foreign exceptions are translated at the edge of the package
that calls the library, and raised `from` the original.
"""

from __future__ import annotations


class SsegateError(Exception):
    """Anything ssegate reports to its user; `exit_status` is the process exit code."""

    exit_status = 1


class ConfigError(SsegateError):
    """A configuration file or command-line option is wrong."""

    exit_status = 2


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
