"""Find a Java runtime able to run the Kafka 4 broker (Java 17 or newer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ssegate.errors import JavaNotFound

MINIMUM_JAVA = 17  # Kafka 4.x brokers need Java 17 (clients 11)

# `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` or, before Java 9,
# `java version "1.8.0_292"` (where the major version is the second number).
_VERSION_LINE = re.compile(r'version "(?P<version>[^"]+)"')


@dataclass(frozen=True, slots=True)
class JavaRuntime:
    """A `java` executable and the major version it reported."""

    executable: Path
    major: int
    banner: str


def parse_major_version(banner: str) -> int | None:
    """The major version in `java -version` output, or None when there is none."""
    match = _VERSION_LINE.search(banner)
    if match is None:
        return None
    parts = re.split(r"[._+-]", match["version"])
    try:
        first = int(parts[0])
        return int(parts[1]) if first == 1 and len(parts) > 1 else first
    except ValueError:
        return None


def find_java(environ: dict[str, str] | None = None) -> JavaRuntime:
    """The `java` from JAVA_HOME, else from PATH; raise JavaNotFound when unusable."""
    env = os.environ if environ is None else environ
    java_home = env.get("JAVA_HOME", "")
    candidate: str | None = None
    if java_home:
        in_home = Path(java_home) / "bin" / "java"
        if in_home.is_file() and os.access(in_home, os.X_OK):
            candidate = str(in_home)
    if candidate is None:
        candidate = shutil.which("java", path=env.get("PATH", ""))
    if candidate is None:
        where = (
            f"PATH, nor in JAVA_HOME={java_home}" if java_home else "PATH (JAVA_HOME is not set)"
        )
        raise JavaNotFound(
            f"no `java` found on {where}. The Kafka broker needs Java {MINIMUM_JAVA} or newer: "
            "install one (Debian: apt-get install openjdk-17-jre-headless) and put it on PATH "
            "or set JAVA_HOME."
        )
    try:
        probe = subprocess.run(
            [candidate, "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFound(f"`{candidate} -version` could not run: {exc}") from exc
    banner = (probe.stderr or probe.stdout).strip()
    major = parse_major_version(banner)
    if major is None:
        first = banner.splitlines()[0] if banner else "(no output)"
        raise JavaNotFound(
            f"`{candidate} -version` did not report a version ({first!r}); "
            f"the Kafka broker needs Java {MINIMUM_JAVA} or newer."
        )
    if major < MINIMUM_JAVA:
        raise JavaNotFound(
            f"{candidate} is Java {major} ({banner.splitlines()[0]}); the Kafka broker needs "
            f"Java {MINIMUM_JAVA} or newer. Install a newer JDK and put it first on PATH "
            "or set JAVA_HOME to it."
        )
    return JavaRuntime(Path(candidate), major, banner)
