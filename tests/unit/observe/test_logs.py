"""Logs never carry tokens, and repeated librdkafka complaints are folded."""

from __future__ import annotations

import logging

from ssegate.observe.logs import RedactSecrets, SuppressRepeats, redact, redact_parameter


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)


def test_tokens_are_redacted() -> None:
    record = _record("stream %s opened", "/events?x=1&access_token=eyJhbGciOi.abc.def&y=2")
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "stream /events?x=1&access_token=[redacted]&y=2 opened"
    record = _record("header Authorization: Bearer eyJ0eXAi.x.y")
    RedactSecrets().filter(record)
    assert record.getMessage() == "header Authorization: Bearer [redacted]"


def test_a_guards_own_token_parameter_is_redacted_too() -> None:
    url = "/events?jwt=eyJhbGciOi.abc.def&ticket=eyJ.x.y&my_jwt=kept"
    assert redact(url) == url  # not secret until a guard says so
    redact_parameter("jwt")
    redact_parameter("ticket")
    assert redact(url) == "/events?jwt=[redacted]&ticket=[redacted]&my_jwt=kept"
    assert redact("?access_token=a.b.c") == "?access_token=[redacted]"


def test_repeats_are_suppressed_then_counted() -> None:
    suppress = SuppressRepeats(window=0.0)
    first = _record("Connect to 127.0.0.1:9092 failed")
    assert suppress.filter(first)
    window = SuppressRepeats(window=3600)
    assert window.filter(_record("Connect to 127.0.0.1:9092 failed (after 0ms)"))
    assert not window.filter(_record("Connect to 127.0.0.1:9092 failed (after 1ms)"))
    assert not window.filter(_record("Connect to 127.0.0.1:9092 failed (after 2ms)"))
    assert window.filter(_record("something else"))
