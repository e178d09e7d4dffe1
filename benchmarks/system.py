"""The machine and its processes: facts for the report, fd limits, CPU and RSS of trees."""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import resource
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

WANTED_FD_LIMIT = 262144


def raise_own_fd_limit(wanted: int = WANTED_FD_LIMIT) -> dict[str, object]:
    """Raise this process's RLIMIT_NOFILE (children inherit it: broker, servers).

    Root may raise the hard limit up to /proc/sys/fs/nr_open; anyone may raise the soft
    limit to the hard one. Returns what happened, for the report.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nr_open = _read_int("/proc/sys/fs/nr_open")
    target = min(wanted, nr_open) if nr_open else wanted
    note = ""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError) as exc:
        note = f"could not raise the fd limit to {target} ({exc}); using the hard limit {hard}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return {"before": [soft, hard], "nr_open": nr_open, "now": now, "note": note}


def raise_fd_limit(wanted: int) -> tuple[int, str]:
    """Raise RLIMIT_NOFILE to `wanted` if possible; return (limit now, note)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft, ""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
        return wanted, ""
    except (ValueError, OSError) as exc:
        new_soft = min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        return new_soft, f"could not raise the fd limit to {wanted} ({exc}); it is {new_soft}"


def _read_int(path: str) -> int:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def machine() -> dict[str, object]:
    """What the report says about the machine."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": _os_release(),
        "python": sys.version.split()[0],
        "ip_local_port_range": Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split(),
        "somaxconn": _read_int("/proc/sys/net/core/somaxconn"),
        "tcp_max_syn_backlog": _read_int("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
    }


LISTEN_COUNTERS = ("ListenOverflows", "ListenDrops")


def listen_counters(path: str = "/proc/net/netstat") -> dict[str, int]:
    """The kernel's `TcpExt` listen-queue counters (since boot, for this network namespace,
    so every process on the machine adds to them): `ListenOverflows`, a connection completed
    while the accept queue was full; `ListenDrops`, every SYN or ACK dropped at a listener
    (overflows included). An empty dict when the file cannot be read."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    for names, values in itertools.pairwise(lines):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return {name: int(table[name]) for name in LISTEN_COUNTERS if name in table}
    return {}


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after if name in before}


def listen_sysctls() -> dict[str, int]:
    """The settings that bound a listener's queues: the accept-queue cap (`somaxconn`),
    the SYN queue (`tcp_max_syn_backlog`) and whether SYN cookies replace it when full."""
    return {
        "net.core.somaxconn": _read_int("/proc/sys/net/core/somaxconn"),
        "net.ipv4.tcp_max_syn_backlog": _read_int("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
        "net.ipv4.tcp_syncookies": _read_int("/proc/sys/net/ipv4/tcp_syncookies"),
    }


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


@dataclass
class TreeSample:
    cpu: float  # user + system seconds, summed over the tree's processes
    rss: int  # bytes, summed
    processes: int
    per_pid: dict[int, float] = field(default_factory=dict)


class ProcessTree:
    """A process and its descendants, sampled with psutil.

    CPU over a window is the sum of each process's (user + system) growth; a process that
    appears during the window counts from zero, one that dies keeps its last sample.
    """

    def __init__(self, pids: list[int]) -> None:
        self.roots = [psutil.Process(pid) for pid in pids]

    def sample(self) -> TreeSample:
        processes: dict[int, psutil.Process] = {}
        for root in self.roots:
            try:
                processes[root.pid] = root
                for child in root.children(recursive=True):
                    processes[child.pid] = child
            except psutil.Error:
                continue
        cpu = 0.0
        rss = 0
        per_pid = {}
        for pid, process in processes.items():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    used = times.user + times.system
                    rss += process.memory_info().rss
            except psutil.Error:
                continue
            per_pid[pid] = used
            cpu += used
        return TreeSample(cpu, rss, len(per_pid), per_pid)

    @staticmethod
    def cpu_between(before: TreeSample, after: TreeSample) -> float:
        return sum(used - before.per_pid.get(pid, 0.0) for pid, used in after.per_pid.items())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout: float, *, alive: object = None) -> None:
    """Wait until `url` answers 200; `alive()` (if given) False means give up at once."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            raise RuntimeError(f"the server exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
                last = f"status {response.status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s ({last})")
