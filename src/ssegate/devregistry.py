"""A development schema registry: Apicurio Registry 3.3.3, fetched from Maven Central once
and run with Java 21+ on loopback (for `ssegate demo` and the test suite).

- Fetch: `mvn dependency:copy` of `io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all`
  (158 MB, kept in ~/.m2 as well), extracted once into
  `<ssegate cache>/tools/apicurio-registry-3.3.3/` under a file lock, so two processes
  neither download twice nor see half an extraction (a `.complete` marker is written last).
- Java: Apicurio 3 is built for Java 21 (Java 17 fails with "class file version 65"). The
  `java` of JAVA_HOME is used when it is 21 or newer, else the newest of /usr/lib/jvm/*
  and PATH; when none qualifies the error lists every one found and its version.
- Run: bound to 127.0.0.1 (HTTP on the port asked for, or a free one, and the management
  interface on a free one: it would otherwise take 0.0.0.0:9000), log to a file, storage in
  H2 **on disk** (`apicurio.datasource.url=jdbc:h2:file:...`), so `stop()` then `start()`
  brings back the same registry on the same port with the same ids. C1-only JIT, the
  serial GC and a class-data archive (made by the first run, `-XX:ArchiveClassesAtExit`)
  shorten the start.
- Ready when `GET /apis/registry/v3/system/info` answers 200; a registry that does not get
  there in time, or exits, fails with the tail of its log.
- `register_ccompat` adds a schema through the Confluent-compatible API
  (`/apis/ccompat/v7`; its ids are content ids).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from ssegate.devkafka import default_cache_root
from ssegate.devkafka.jars import DEPENDENCY_PLUGIN
from ssegate.devkafka.java import parse_major_version
from ssegate.errors import SsegateError

VERSION = "3.3.3"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{VERSION}:tar.gz:all"
MINIMUM_JAVA = 21
START_TIMEOUT = 180.0  # seconds; about 5-15 s on a busy 2-core machine
JVM_OPTIONS = (
    "-Xmx384m",
    "-XX:TieredStopAtLevel=1",  # C1 only: a short-lived development server starts faster
    "-XX:+UseSerialGC",
)


class DevRegistryError(SsegateError):
    """The development registry could not be fetched or started; the message says why."""


def registry_home() -> Path:
    """The extracted registry (the directory holding `quarkus-run.jar`), fetched on first use."""
    tools = default_cache_root() / "tools"
    home = tools / f"apicurio-registry-{VERSION}"
    if (home / ".complete").is_file():
        return home
    tools.mkdir(parents=True, exist_ok=True)
    with (tools / f"apicurio-registry-{VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other pytest process may be extracting
        if (home / ".complete").is_file():
            return home
        _fetch_into(home)
    return home


def _fetch_into(home: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevRegistryError(f"`mvn` is not on PATH: it fetches {ARTIFACT} from Maven Central")
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".apicurio-") as scratch:
        download = Path(scratch) / "download"
        command = [
            mvn,
            "-B",
            "-q",
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={ARTIFACT}",
            f"-DoutputDirectory={download}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        archives = sorted(download.glob("*.tar.gz")) if download.is_dir() else []
        if result.returncode != 0 or not archives:
            said = (result.stdout + result.stderr).strip().splitlines()[-20:]
            raise DevRegistryError(
                f"fetching {ARTIFACT} failed (mvn exit status {result.returncode}):\n  "
                + " ".join(command)
                + "\n  "
                + "\n  ".join(said)
            )
        unpacked = Path(scratch) / "app"
        unpacked.mkdir()
        # The archive has no top-level directory: quarkus-run.jar, lib/, app/, quarkus/.
        subprocess.run(["tar", "-xzf", str(archives[0]), "-C", str(unpacked)], check=True)
        if not (unpacked / "quarkus-run.jar").is_file():
            raise DevRegistryError(f"{archives[0].name} holds no quarkus-run.jar")
        (unpacked / ".complete").write_text(VERSION + "\n")
        if home.exists():  # an interrupted extraction of an older run, without its marker
            shutil.rmtree(home)
        unpacked.rename(home)


def find_java(minimum: int = MINIMUM_JAVA, environ: Mapping[str, str] | None = None) -> Path:
    """A `java` of version `minimum` or newer: JAVA_HOME's when it is one, else the newest
    of /usr/lib/jvm/* and PATH."""
    env = os.environ if environ is None else environ
    candidates: list[Path] = []
    if env.get("JAVA_HOME"):
        candidates.append(Path(env["JAVA_HOME"]) / "bin" / "java")
    jvms = Path("/usr/lib/jvm")
    if jvms.is_dir():
        candidates += [home / "bin" / "java" for home in sorted(jvms.iterdir(), reverse=True)]
    on_path = shutil.which("java", path=env.get("PATH", ""))
    if on_path:
        candidates.append(Path(on_path))
    seen: list[str] = []
    usable: list[tuple[int, Path]] = []
    for java in dict.fromkeys(candidates):  # in order, without repeats
        if not (java.is_file() and os.access(java, os.X_OK)):
            continue
        try:
            probe = subprocess.run(
                [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            seen.append(f"{java}: does not run ({exc})")
            continue
        major = parse_major_version(probe.stderr or probe.stdout)
        seen.append(f"{java}: Java {major}")
        if major is not None and major >= minimum:
            usable.append((major, java))
    if not usable:
        found = "\n  ".join(seen) or "(no java at all)"
        raise DevRegistryError(
            f"Apicurio Registry {VERSION} needs Java {minimum} or newer; found:\n  {found}\n"
            "Install a JDK 21+ (e.g. Temurin) under /usr/lib/jvm or set JAVA_HOME to it."
        )
    home = Path(env["JAVA_HOME"]) / "bin" / "java" if env.get("JAVA_HOME") else None
    chosen = next((java for _, java in usable if java == home), None)
    return chosen or max(usable, key=lambda found: found[0])[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DevRegistry:
    """One registry process over a data directory; `stop()` and `start()` keep its data,
    its port and its ids."""

    def __init__(self, data: Path, java: Path | None = None, port: int | None = None) -> None:
        self.home = registry_home()
        self.java = java or find_java()
        self.data = data
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_path = data / "registry.log"
        self.port = port or free_port()
        self.management_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ccompat_url = f"{self.url}/apis/ccompat/v7"
        self.api_url = f"{self.url}/apis/registry/v3"
        self.start_seconds: list[float] = []  # each start's time to ready
        self._process: subprocess.Popen[bytes] | None = None
        self._archive = self.home / f"classes-{self.java.parent.parent.name}.jsa"
        self._dumping: Path | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        assert not self.running, "already running"
        command = [
            str(self.java),
            *JVM_OPTIONS,
            *self._class_archive(),
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.port}",
            "-Dquarkus.management.host=127.0.0.1",
            f"-Dquarkus.management.port={self.management_port}",
            f"-Dapicurio.datasource.url=jdbc:h2:file:{self.data / 'registry'}",
            "-Dapicurio.datasource.jdbc.initial-size=2",  # 20 connections by default
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-jar",
            str(self.home / "quarkus-run.jar"),
        ]
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.data, start_new_session=True
            )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DevRegistryError(
                    f"Apicurio exited with status {self._process.returncode} while starting; "
                    f"{self.log_path} ends with:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/system/info", timeout=2).status_code == 200:
                    self.start_seconds.append(time.monotonic() - began)
                    return
            time.sleep(0.1)
        self.stop()
        raise DevRegistryError(
            f"Apicurio was not ready within {timeout:.0f} s; {self.log_path} ends with:\n"
            + self.log_tail()
        )

    def _class_archive(self) -> list[str]:
        """Classes loaded by one run, mapped by the next: the start takes about half as
        long. The first run dumps to a name of its own at exit; `stop()` renames the dump
        into place, so no JVM ever maps an archive that another is still writing."""
        if self._archive.is_file():
            return [f"-XX:SharedArchiveFile={self._archive}"]
        self._dumping = self._archive.with_name(f".{uuid.uuid4().hex}.jsa")
        return [f"-XX:ArchiveClassesAtExit={self._dumping}"]

    def stop(self, timeout: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        dumped, self._dumping = self._dumping, None
        if dumped is not None and dumped.is_file():
            if process.returncode in (0, 143, -signal.SIGTERM):  # a complete dump
                os.replace(dumped, self._archive)
            else:
                dumped.unlink()

    def rss_bytes(self) -> int:
        """The running process's resident memory (0 when not running)."""
        if self._process is None or not self.running:
            return 0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- adding schemas ----------------------------------------------------------------------

    def register_ccompat(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: Sequence[Mapping[str, Any]] = (),
    ) -> int:
        """Register through the Confluent-compatible API; its schema id (a content id)."""
        body: dict[str, Any] = {"schema": schema, "schemaType": schema_type}
        if references:
            body["references"] = list(references)
        response = httpx.post(
            f"{self.ccompat_url}/subjects/{subject}/versions",
            json=body,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            timeout=30,
        )
        if response.status_code != 200:
            raise DevRegistryError(f"registering {subject}: {response.text}")
        schema_id: int = response.json()["id"]
        return schema_id
