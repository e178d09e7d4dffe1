"""Create and delete topics on a development broker (used by `demo` and the tests)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ssegate.errors import DevKafkaError

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

_librdkafka_logger = logging.getLogger("ssegate.devkafka.librdkafka")


def admin_client(bootstrap: str) -> AdminClient:
    """An AdminClient whose librdkafka logs go to Python logging, not stderr."""
    from confluent_kafka.admin import AdminClient

    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _librdkafka_logger}
    return AdminClient(config)


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    *,
    exist_ok: bool = False,
    timeout: float = 30.0,
) -> None:
    """Create `name` and return once every partition has a leader."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.cimpl import NewTopic

    admin = admin_client(bootstrap)
    new = NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
    try:
        admin.create_topics([new], operation_timeout=timeout)[name].result(timeout)
    except KafkaException as exc:
        error = exc.args[0]
        if not (exist_ok and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise DevKafkaError(f"creating topic {name!r} failed: {error.str()}") from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and len(topic.partitions) >= partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        time.sleep(0.1)
    raise DevKafkaError(f"topic {name!r} was created but its partitions got no leader in time")


def delete_topic(bootstrap: str, name: str, *, timeout: float = 30.0) -> None:
    """Delete `name`; a topic that does not exist is not an error."""
    from confluent_kafka import KafkaError, KafkaException

    admin = admin_client(bootstrap)
    try:
        admin.delete_topics([name], operation_timeout=timeout)[name].result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise DevKafkaError(f"deleting topic {name!r} failed: {exc.args[0].str()}") from exc
