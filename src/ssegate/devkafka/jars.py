"""Fetch the Kafka broker jars from Maven Central once, into the user's cache.

The pom.xml shipped beside this module pins the versions. The jars land in
`<cache>/kafka-<version>-<pom digest>/libs`, written to a temporary directory and renamed
into place only when `mvn` succeeded, so an interrupted download is never mistaken for
a complete one and the second start downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from ssegate.errors import MavenError

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"

Progress = Callable[[str], None]
"""Receives one line of progress for the person waiting (printed to stderr by the CLI)."""


def pom_text() -> str:
    """The shipped pom.xml."""
    return resources.files(__package__).joinpath("pom.xml").read_text(encoding="utf-8")


def kafka_version() -> str:
    """The Kafka version the shipped pom.xml pins."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom_text())
    if match is None:  # pragma: no cover - the shipped pom always names it
        raise MavenError("the packaged pom.xml names no <kafka.version>")
    return match.group(1)


def default_cache_root(environ: dict[str, str] | None = None) -> Path:
    """$SSEGATE_CACHE_DIR, else $XDG_CACHE_HOME/ssegate, else ~/.cache/ssegate."""
    env = os.environ if environ is None else environ
    if env.get("SSEGATE_CACHE_DIR"):
        return Path(env["SSEGATE_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ssegate"


def libs_dir(cache_root: Path) -> Path:
    """Where the jars for the shipped pom.xml live (they may not be there yet)."""
    digest = hashlib.sha256(pom_text().encode()).hexdigest()[:10]
    return cache_root / f"kafka-{kafka_version()}-{digest}" / "libs"


def is_cached(cache_root: Path) -> bool:
    return (libs_dir(cache_root) / ".complete").is_file()


def ensure_jars(
    cache_root: Path,
    environ: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> Path:
    """The directory of broker jars, downloading them with `mvn` on first use."""
    target = libs_dir(cache_root)
    if (target / ".complete").is_file():
        return target
    env = dict(os.environ if environ is None else environ)
    mvn = shutil.which("mvn", path=env.get("PATH", ""))
    if mvn is None:
        raise MavenError(
            f"`mvn` (Apache Maven) is not on PATH, and the Kafka {kafka_version()} broker jars "
            f"are not cached yet in {target}. Install Maven (Debian: apt-get install maven) "
            "so the jars can be fetched from Maven Central once."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as scratch:
        pom = Path(scratch) / "pom.xml"
        pom.write_text(pom_text(), encoding="utf-8")
        out = Path(scratch) / "libs"
        command = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={out}",
        ]
        if progress is not None:
            progress(f"fetching Kafka {kafka_version()} broker jars with mvn (first start only)")
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=900, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise MavenError(
                f"fetching the Kafka {kafka_version()} jars took over 15 minutes; tried:\n  "
                + " ".join(command)
            ) from exc
        jars = sorted(out.glob("kafka_2.13-*.jar")) if out.is_dir() else []
        if result.returncode != 0 or not jars:
            said = (result.stdout + result.stderr).strip().splitlines()[-25:]
            raise MavenError(
                f"fetching the Kafka {kafka_version()} broker jars from Maven Central failed "
                f"(mvn exit status {result.returncode}).\n"
                f"Tried:\n  {' '.join(command)}\n"
                "Maven said:\n  " + "\n  ".join(said or ["(nothing)"]) + "\n"
                f"Check that this machine reaches {MAVEN_CENTRAL} (or the mirror configured "
                "in ~/.m2/settings.xml) and run the command again."
            )
        (out / ".complete").write_text(kafka_version() + "\n", encoding="utf-8")
        if target.exists():  # a concurrent start finished first; keep its copy
            return target
        out.rename(target)
    return target
