"""The jar cache: where it lives, and the error when Maven is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssegate.devkafka.jars import (
    default_cache_root,
    ensure_jars,
    is_cached,
    kafka_version,
    libs_dir,
)
from ssegate.errors import MavenError


def test_pinned_kafka_is_4x() -> None:
    assert kafka_version().startswith("4.")


def test_cache_root_precedence(tmp_path: Path) -> None:
    assert default_cache_root({"SSEGATE_CACHE_DIR": "/a", "XDG_CACHE_HOME": "/b"}) == Path("/a")
    assert default_cache_root({"XDG_CACHE_HOME": "/b"}) == Path("/b/ssegate")
    assert default_cache_root({}) == Path.home() / ".cache" / "ssegate"


def test_libs_dir_names_the_version(tmp_path: Path) -> None:
    libs = libs_dir(tmp_path)
    assert libs.parent.name.startswith(f"kafka-{kafka_version()}-")
    assert not is_cached(tmp_path)


def test_mvn_missing_with_empty_cache(tmp_path: Path) -> None:
    with pytest.raises(MavenError) as caught:
        ensure_jars(tmp_path / "cache", {"PATH": str(tmp_path)})
    message = str(caught.value)
    assert message.startswith("`mvn` (Apache Maven) is not on PATH")
    assert str(libs_dir(tmp_path / "cache")) in message
    assert "apt-get install maven" in message


def test_cached_jars_need_no_mvn(tmp_path: Path) -> None:
    libs = libs_dir(tmp_path)
    libs.mkdir(parents=True)
    (libs / ".complete").write_text("x")
    assert ensure_jars(tmp_path, {"PATH": str(tmp_path)}) == libs


def test_cluster_ids_never_start_with_a_dash() -> None:
    from ssegate.devkafka.broker import new_cluster_id

    ids = {new_cluster_id() for _ in range(5000)}  # ~78 would start with '-' if unchecked
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
