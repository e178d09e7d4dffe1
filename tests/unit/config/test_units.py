"""Durations and sizes: the units the YAML may use, and what is rejected."""

from __future__ import annotations

import pytest

from ssegate.config import parse_duration, parse_size


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (15, 15.0),
        (0.25, 0.25),
        ("15", 15.0),
        ("15s", 15.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        (".5s", 0.5),
        ("2.", 2.0),
        (" 10 s ", 10.0),
        ("0", 0.0),
        (-3, -3.0),  # the sign is judged by the field's check, with its path
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5x", "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got '5x'"),
        ("15S", "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got '15S'"),
        ("-5s", "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got '-5s'"),
        ("1e3", "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got '1e3'"),
        ("", "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got ''"),
        ("1d", "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got '1d'"),
        (True, "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got True"),
        ([1], "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got list"),
        (None, "expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, got null"),
        (float("inf"), "expected a finite duration, got inf"),
        (float("nan"), "expected a finite duration, got nan"),
        ("9" * 400, f"expected a finite duration, got '{'9' * 400}'"),
        (10**400, f"duration {10**400!r} is too large"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        parse_duration(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1048576, 1048576),
        ("1048576", 1048576),
        (2.0, 2),
        ("1B", 1),
        ("1KB", 1000),
        ("1kB", 1000),
        ("1MB", 1_000_000),
        ("1GB", 1_000_000_000),
        ("1TB", 10**12),
        ("64KiB", 65536),
        ("1MiB", 1048576),
        ("1GiB", 1024**3),
        ("1TiB", 1024**4),
        ("1.5MiB", 1572864),
        ("0.5KiB", 512),
        (" 16 KiB ", 16384),
        (-1, -1),  # the sign is judged by the field's check, with its path
    ],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1XB", "expected a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of bytes, got '1XB'"),
        ("1kib", "expected a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of bytes, got '1kib'"),
        ("1 M", "expected a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of bytes, got '1 M'"),
        (
            "-1KiB",
            "expected a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of bytes, got '-1KiB'",
        ),
        (True, "expected a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of bytes, got True"),
        ({}, "expected a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of bytes, got mapping"),
        ("1.5B", "size '1.5B' is not a whole number of bytes"),
        ("0.1KiB", "size '0.1KiB' is not a whole number of bytes"),
        (1.5, "size 1.5 is not a whole number of bytes"),
    ],
)
def test_bad_sizes(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        parse_size(value)
    assert str(caught.value) == message
