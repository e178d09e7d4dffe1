"""Source names: a topic, or a topic read through a model (`<topic>|<model>`).

`|` is never in a Kafka topic name, so a modeled name cannot be taken for a topic: the
fan-out keeps one hub, ring and reader per name, and the streams of routes that read a topic
through the same model share them (`ssegate.schemas.sources`).
"""

from __future__ import annotations

SEPARATOR = "|"


def modeled_name(topic: str, model: str | None) -> str:
    """The source name a route reads `topic` under."""
    return topic if model is None else f"{topic}{SEPARATOR}{model}"


def split_name(name: str) -> tuple[str, str | None]:
    """The topic and the model (or None) of a source name."""
    topic, separator, model = name.partition(SEPARATOR)
    return topic, (model if separator else None)
