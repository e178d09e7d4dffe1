"""Logging setup: one line per record, repeats suppressed, secrets never written."""

from __future__ import annotations

import logging
import re
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# `<name>=...` in a URL for each secret query parameter (`access_token`, and whatever a
# guard's `credentials.query` names), and `Bearer ...` in a header value, wherever they are.
_SECRET_PARAMETERS = {"access_token"}
_DIGITS = re.compile(r"\d+")


def _secrets_pattern(names: set[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) + "=" for name in sorted(names))
    return re.compile(rf"((?<![\w-])(?:{alternatives})|(?:[Bb]earer\s+))[^\s&\"']+")


_SECRETS = _secrets_pattern(_SECRET_PARAMETERS)


def redact_parameter(name: str) -> None:
    """Redact query parameter `name` from now on too (a guard's token parameter)."""
    global _SECRETS
    if name not in _SECRET_PARAMETERS:
        _SECRET_PARAMETERS.add(name)
        _SECRETS = _secrets_pattern(_SECRET_PARAMETERS)


def redact(text: str) -> str:
    """`text` with the value of every secret query parameter and `Bearer` credential
    replaced by `[redacted]`."""
    if "=" in text or "earer" in text:
        return _SECRETS.sub(r"\1[redacted]", text)
    return text


class RedactSecrets(logging.Filter):
    """Replaces token values in every message with `[redacted]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted is not message:
            record.msg = redacted
            record.args = None
        return True


class SuppressRepeats(logging.Filter):
    """Lets one of each message through per `window` seconds (digits ignored).

    librdkafka logs every failed connection attempt; while a broker is down that is a line
    per attempt per broker per client. One a minute says the same.
    """

    def __init__(self, window: float = 60.0) -> None:
        super().__init__()
        self._window = window
        self._last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = _DIGITS.sub("#", record.getMessage())
        now = time.monotonic()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self._window:
            self._last[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.getMessage()} (and {seen[1]} similar in the last minute)"
            record.args = None
        if len(self._last) > 1000:  # bounded: forget everything rather than grow
            self._last.clear()
        self._last[key] = (now, 0)
        return True


def configure(level: int) -> None:
    """Root logging for the `ssegate` command."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    librdkafka = logging.getLogger("ssegate.kafka.librdkafka")
    librdkafka.setLevel(logging.WARNING)
    librdkafka.addFilter(SuppressRepeats())
