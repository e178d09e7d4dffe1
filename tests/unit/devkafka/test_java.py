"""Finding a Java able to run the broker: version parsing and the errors a user sees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ssegate.devkafka.java import find_java, parse_major_version
from ssegate.errors import JavaNotFound


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('openjdk version "21.0.2+13-LTS" 2024-01-16', 21),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ('openjdk version "17-ea"', 17),
        ("no version here", None),
        ('openjdk version "x.y"', None),
    ],
)
def test_parse_major_version(banner: str, major: int | None) -> None:
    assert parse_major_version(banner) == major


def _fake_java(directory: Path, banner: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho '{banner}' >&2\n")
    java.chmod(0o755)
    return java


def test_no_java_anywhere(tmp_path: Path) -> None:
    with pytest.raises(JavaNotFound) as caught:
        find_java({"PATH": str(tmp_path)})
    message = str(caught.value)
    assert "no `java` found on PATH (JAVA_HOME is not set)" in message
    assert "Java 17 or newer" in message


def test_java_home_wins_over_path(tmp_path: Path) -> None:
    _fake_java(tmp_path / "path", 'openjdk version "11.0.2" 2019-01-15')
    home_java = _fake_java(tmp_path / "home" / "bin", 'openjdk version "21.0.1" 2023-10-17')
    found = find_java({"PATH": str(tmp_path / "path"), "JAVA_HOME": str(tmp_path / "home")})
    assert found.executable == home_java
    assert found.major == 21


def test_java_too_old(tmp_path: Path) -> None:
    java = _fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    with pytest.raises(JavaNotFound) as caught:
        find_java({"PATH": str(tmp_path)})
    assert str(caught.value).startswith(f"{java} is Java 11 (openjdk version")
    assert "needs Java 17 or newer" in str(caught.value)


def test_java_without_version(tmp_path: Path) -> None:
    _fake_java(tmp_path, "something else entirely")
    with pytest.raises(JavaNotFound, match="did not report a version"):
        find_java({"PATH": str(tmp_path)})


def test_machine_java_is_usable() -> None:
    found = find_java(dict(os.environ))
    assert found.major >= 17
