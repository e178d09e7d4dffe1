"""A py-spy profile of the gateway under the fan-out load, and its summary.

`py-spy record --pid <gateway> --duration S --format raw --nonblocking` (py-spy from the
bench tools venv) writes collapsed stacks: one line per distinct stack, frames joined by
`;`, then the sample count. Idle threads are left out (py-spy's default), so the counts
are where the CPU went. The summary gives the top functions by self samples (the leaf
frame) and by inclusive samples (anywhere on the stack), and the share per thread.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import install

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def record(pid: int, seconds: float, output: Path, *, native: bool = False) -> dict[str, Any]:
    """Profile `pid` for `seconds`; the summary (with `error` when py-spy failed)."""
    try:
        venv = install.tools_venv()
    except install.InstallError as exc:
        return {"error": str(exc)}
    command = [
        str(venv / "bin" / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--nonblocking",
        "--threads",
        "--output",
        str(output),
    ]
    if native:
        command.append("--native")
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not output.exists():
        return {"error": f"py-spy exited {done.returncode}: {done.stderr.strip()[-500:]}"}
    summary = summarise(output.read_text())
    summary["command"] = " ".join(command[1:]).replace(str(install.BENCH.parent) + "/", "")
    summary["file"] = output.name
    return summary


def _short(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file})"


def summarise(collapsed: str, top: int = 15) -> dict[str, Any]:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread (", "process ")):
            threads[frames[0]] += count
            frames = frames[1:]
            if frames and frames[0].startswith("thread ("):
                threads[frames[0]] += 0
        names = [_short(frame) for frame in frames if not frame.startswith("thread (")]
        if not names:
            continue
        self_counts[names[-1]] += count
        for name in set(names):
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": name, "samples": count, "percent": round(100 * count / total, 1)}
            for name, count in counter.most_common(top)
        ]

    return {
        "samples": total,
        "self": share(self_counts),
        "inclusive": share(inclusive),
        "threads": share(threads),
    }
