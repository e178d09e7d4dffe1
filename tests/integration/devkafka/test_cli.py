"""`ssegate devkafka` end to end: a real broker from Maven Central jars, and every error case.

Each test runs the command line in a subprocess with its own home directory, as a user
would, and asserts what the user sees: exit status, stdout, stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from ssegate.devkafka import kafka_version
from tests.support.kafka import KafkaCluster, Record

pytestmark = pytest.mark.kafka

BOOTSTRAP_LINE = re.compile(r"^bootstrap=127\.0\.0\.1:(\d+)$")


def devkafka(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ if env is None else env)
    environ["SSEGATE_DEVKAFKA_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "ssegate", "devkafka", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def our_java_processes(home: Path) -> list[str]:
    """Command lines of live java processes that use files under `home`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if "java" in cmdline and str(home) in cmdline and state != "Z":
            found.append(cmdline)
    return found


def test_start_status_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = devkafka("start", home=home)
    assert started.returncode == 0, started.stderr
    last = started.stdout.strip().splitlines()[-1]
    match = BOOTSTRAP_LINE.match(last)
    assert match, started.stdout
    bootstrap = last.removeprefix("bootstrap=")
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        assert [b.port for b in metadata.brokers.values()] == [int(match[1])]

        status = devkafka("status", home=home)
        assert status.returncode == 0
        assert status.stdout.strip().splitlines()[-1] == last
        assert status.stdout.startswith("running pid=")

        again = devkafka("start", home=home)
        assert again.returncode == 0
        assert again.stdout.strip().splitlines()[-1] == last
        assert "already running" in again.stderr
        assert len(our_java_processes(home)) == 1
    finally:
        stopped = devkafka("stop", home=home)
    assert stopped.returncode == 0
    assert stopped.stdout.strip() == "stopped"
    assert our_java_processes(home) == []
    assert not (home / "data").exists(), "a fresh data directory is removed on stop"

    status = devkafka("status", home=home)
    assert status.returncode == 3
    assert status.stdout.strip() == "not running"
    assert devkafka("stop", home=home).stdout.strip() == "not running"


def test_data_kept_between_runs(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    first = devkafka("start", "--data", str(data), home=home)
    assert first.returncode == 0, first.stderr
    bootstrap = first.stdout.strip().splitlines()[-1].removeprefix("bootstrap=")
    try:
        cluster = KafkaCluster(bootstrap)
        topic = cluster.new_topic(partitions=2)
        cluster.produce(topic, [Record(b"kept", key=b"k", partition=1)])
    finally:
        assert devkafka("stop", home=home).returncode == 0
    assert (data / "meta.properties").is_file()

    second = devkafka("start", "--data", str(data), home=home)
    assert second.returncode == 0, second.stderr
    try:
        assert second.stdout.strip().splitlines()[-1] == f"bootstrap={bootstrap}"
        assert "formatting" not in second.stderr
        (record,) = KafkaCluster(bootstrap).read_all(topic, expected=1)
        assert (record.partition, record.offset, record.key, record.value) == (1, 0, b"k", b"kept")
    finally:
        assert devkafka("stop", home=home).returncode == 0
    assert (data / "meta.properties").is_file(), "--data is never deleted"


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = devkafka("start", "--port", str(port), home=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        f"ssegate: error: port {port} on 127.0.0.1 is already in use; choose another with "
        "--port, or leave --port out to get a free one"
    )
    assert devkafka("status", home=tmp_path).returncode == 3


def test_broker_exiting_during_start_shows_its_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # Storage formatted for another node: the broker refuses it and exits at once.
    (data / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n"
        "directory.id=AAAAAAAAAAAAAAAAAAAAAA\n"
    )
    result = devkafka("start", "--data", str(data), home=tmp_path / "home")
    assert result.returncode == 1
    assert "ssegate: error: the Kafka broker exited (status 1) while starting" in result.stderr
    assert f"the end of its log {tmp_path / 'home' / 'broker.log'}:" in result.stderr
    assert "Stored node id 7 doesn't match previous node id 1" in result.stderr
    assert our_java_processes(tmp_path) == []
    assert devkafka("status", home=tmp_path / "home").returncode == 3


def test_no_java(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)
    result = devkafka("start", home=tmp_path / "home", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "ssegate: error: no `java` found on PATH (JAVA_HOME is not set). "
        "The Kafka broker needs Java 17 or newer"
    )


def test_java_older_than_17(tmp_path: Path) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(java.parent)
    result = devkafka("start", home=tmp_path / "home", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"ssegate: error: {java} is Java 11 (openjdk version")
    assert "needs Java 17 or newer" in result.stderr


def _path_with_java_only(tmp_path: Path) -> str:
    real_java = shutil.which("java")
    assert real_java is not None
    bin_dir = tmp_path / "javabin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(os.path.realpath(real_java))
    return str(bin_dir)


def test_mvn_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = _path_with_java_only(tmp_path)
    env["SSEGATE_CACHE_DIR"] = str(tmp_path / "empty-cache")
    result = devkafka("start", home=tmp_path / "home", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("ssegate: error: `mvn` (Apache Maven) is not on PATH")
    assert "apt-get install maven" in result.stderr


def test_download_failure_says_what_was_tried(tmp_path: Path) -> None:
    # A real mvn, pointed at a mirror nobody listens on, with an empty local repository.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    user_home = tmp_path / "mvnhome"
    (user_home / ".m2").mkdir(parents=True)
    (user_home / ".m2" / "settings.xml").write_text(
        f"""<settings><localRepository>{tmp_path / "repo"}</localRepository>
<mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>
<url>http://127.0.0.1:{dead_port}/maven2</url></mirror></mirrors></settings>"""
    )
    env = dict(os.environ)
    env["MAVEN_OPTS"] = f"-Duser.home={user_home}"
    env["SSEGATE_CACHE_DIR"] = str(tmp_path / "empty-cache")
    result = devkafka("start", home=tmp_path / "home", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"devkafka: fetching Kafka {kafka_version()} broker jars with mvn (first start only)\n"
        f"ssegate: error: fetching the Kafka {kafka_version()} broker jars from Maven Central "
        "failed (mvn exit status 1)."
    )
    assert "\nTried:\n  " in result.stderr
    assert "copy-dependencies" in result.stderr
    assert f"127.0.0.1:{dead_port}" in result.stderr, "Maven's own words are shown"
    assert "Check that this machine reaches https://repo.maven.apache.org/maven2" in result.stderr
    assert not list((tmp_path / "empty-cache").rglob("*.jar")), "nothing half-downloaded is kept"
