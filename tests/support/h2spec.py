"""h2spec, the HTTP/2 conformance suite (a Go program): built once with `go install` from
the Go module proxy into ssegate's cache, then run against a gateway."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from ssegate.devkafka import default_cache_root

MODULE = "github.com/summerwind/h2spec/cmd/h2spec"
VERSION = "v2.2.1+incompatible"  # its latest release; 146 cases with --strict


def h2spec_binary() -> Path:
    """The h2spec binary, installed on first use (needs `go` on PATH and the proxy)."""
    directory = default_cache_root() / "tools" / f"h2spec-{VERSION.split('+')[0]}"
    binary = directory / "h2spec"
    if binary.exists():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    directory.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "GOBIN": str(directory), "GOFLAGS": "-modcacherw"}
    subprocess.run(
        [go, "install", f"{MODULE}@{VERSION}"],
        check=True,
        env=environment,
        capture_output=True,
        timeout=600,
    )
    return binary


@dataclass(frozen=True)
class Outcome:
    passed: list[str]
    failed: list[str]
    skipped: list[str]


def run_h2spec(port: int, *, tls: bool, path: str, report: Path) -> Outcome:
    """Every case (`--strict`) against 127.0.0.1:`port`; each case named section/title."""
    command = [str(h2spec_binary()), "--strict", "-h", "127.0.0.1", "-p", str(port)]
    command += ["-P", path, "-o", "5", "-j", str(report)]
    if tls:
        command += ["-t", "-k"]
    subprocess.run(command, capture_output=True, timeout=300, check=False)
    passed, failed, skipped = [], [], []
    # h2spec copies frame bytes (NULs) into its messages: not XML until they are replaced.
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "?", report.read_text(errors="replace"))
    # The report is h2spec's, written here: trusted.
    for case in ElementTree.fromstring(text).iter("testcase"):  # noqa: S314
        name = f"{case.get('package')}: {case.get('classname')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    return Outcome(passed, failed, skipped)
