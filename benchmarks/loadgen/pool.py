"""The controller of the load generator: client processes, streams spread over them.

`ClientPool` starts `processes` worker processes (`worker.py`), gives each a share of the
streams (stream `i` goes to process `i % processes`, from source address
127.0.0.(2 + i // 20000): each source address has its own ~28k ephemeral ports towards
one server port), and aggregates what they report. Every call is synchronous and bounded
by a timeout; the harness that uses it is plain sequential code.
"""

from __future__ import annotations

import multiprocessing
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from benchmarks.loadgen.worker import worker_main

STREAMS_PER_SOURCE = 20000
COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class StreamSpec:
    """What one stream asks for."""

    path: str
    keys: tuple[str, ...] = ()  # the keys it must receive; () = all of them
    sample: bool = False  # record the latency of every event
    check_ids: bool = False  # decode the last id of every read
    headers: str = ""  # extra request header lines ("Name: value\r\n"), e.g. a token


@dataclass
class Window:
    """What the clients saw in a measurement window."""

    events: int
    latencies_ns: array[int]
    client_cpu: float
    seconds: float  # the controller's window
    rate: float  # events/s: each process's count over its own window, summed


@dataclass
class OpenResult:
    opened: int
    seconds: float | None  # first connect to last 200, when every stream opened
    refused: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    fd_notes: list[str] = field(default_factory=list)


class ClientPool:
    """Client processes and the streams they hold."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(child,), daemon=True)
            process.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(process)
        for conn in self._conns:
            if not conn.poll(30):
                raise RuntimeError("a load-generator process did not start")
            conn.recv()
        self.streams = 0
        self._window_started = 0.0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def _all(self, command: dict[str, Any], timeout: float = COMMAND_TIMEOUT) -> list[Any]:
        for conn in self._conns:
            conn.send(dict(command))
        replies = []
        deadline = time.monotonic() + timeout
        for conn in self._conns:
            if not conn.poll(max(deadline - time.monotonic(), 0.01)):
                raise TimeoutError(f"load generator: no answer to {command['cmd']} in {timeout}s")
            reply = conn.recv()
            if isinstance(reply, dict) and "error" in reply:
                raise RuntimeError(f"load generator {command['cmd']}: {reply['error']}")
            replies.append(reply)
        return replies

    def open(
        self,
        port: int,
        specs: list[StreamSpec],
        *,
        terminator: bytes = b"\n\n",
        id_kind: str = "ssegate",
        exact_ids: bool = False,
        concurrency: int = 200,
        reconnect: bool = True,
        host: str = "127.0.0.1",
        protocol: str = "h1",
        per_connection: int = 1,
    ) -> list[str]:
        """Start connecting `specs` (does not wait; see `wait_open`). Returns fd notes."""
        shares: list[list[tuple[int, str, list[str], str, bool, bool, str]]] = [
            [] for _ in self._conns
        ]
        for offset, spec in enumerate(specs):
            index = self.streams + offset
            source = f"127.0.0.{2 + index // STREAMS_PER_SOURCE}"
            shares[index % len(shares)].append(
                (
                    index,
                    spec.path,
                    list(spec.keys),
                    source,
                    spec.sample,
                    spec.check_ids,
                    spec.headers,
                )
            )
        self.streams += len(specs)
        notes = []
        for conn, share in zip(self._conns, shares, strict=True):
            conn.send(
                {
                    "cmd": "open",
                    "host": host,
                    "port": port,
                    "streams": share,
                    "terminator": terminator,
                    "id_kind": id_kind,
                    "exact_ids": exact_ids,
                    "concurrency": concurrency,
                    "reconnect": reconnect,
                    "protocol": protocol,
                    "per_connection": per_connection,
                }
            )
        for conn in self._conns:
            if not conn.poll(COMMAND_TIMEOUT):
                raise TimeoutError("load generator: no answer to open")
            reply = conn.recv()
            if "error" in reply:
                raise RuntimeError(f"load generator open: {reply['error']}")
            if reply["fd_note"]:
                notes.append(reply["fd_note"])
        return notes

    def status(self) -> dict[str, Any]:
        replies = self._all({"cmd": "status"})
        total: dict[str, Any] = {
            "open": sum(r["open"] for r in replies),
            "ever_opened": sum(r["ever_opened"] for r in replies),
            "events": sum(r["events"] for r in replies),
            "reconnects": sum(r["reconnects"] for r in replies),
            "lost_connections": sum(r["lost_connections"] for r in replies),
            "caught_up": sum(r["caught_up"] for r in replies),
            "cpu": sum(r["cpu"] for r in replies),
            "refused": _merge(r["refused"] for r in replies),
            "refused_streams": sum(r["refused_streams"] for r in replies),
            "refused_waiting": sum(r["refused_waiting"] for r in replies),
            "settled": sum(r["settled"] for r in replies),
            "reconnect_delays": merge_delays(r["reconnect_delays"] for r in replies),
            "connect_errors": _merge(r["connect_errors"] for r in replies),
        }
        starts = [r["connect_started"] for r in replies if r["connect_started"] is not None]
        opens = [r["last_open_at"] for r in replies if r["last_open_at"] is not None]
        caught = [r["last_caught_up_at"] for r in replies if r["last_caught_up_at"] is not None]
        total["connect_started"] = min(starts, default=None)
        total["last_open_at"] = max(opens, default=None)
        total["last_caught_up_at"] = max(caught, default=None)
        return total

    def wait_open(self, timeout: float, expected: int | None = None) -> OpenResult:
        """Wait until every stream is open (or `timeout`); the time it took to open them."""
        expected = self.streams if expected is None else expected
        deadline = time.monotonic() + timeout
        status = self.status()
        while status["open"] < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            status = self.status()
        seconds = None
        if status["open"] >= expected and status["connect_started"] is not None:
            seconds = status["last_open_at"] - status["connect_started"]
        return OpenResult(status["open"], seconds, status["refused"], status["connect_errors"], [])

    def window_start(self) -> float:
        replies = self._all({"cmd": "window", "on": True})
        self._window_started = time.monotonic()
        return float(sum(r["cpu"] for r in replies))

    def window_end(self, cpu_at_start: float) -> Window:
        replies = self._all({"cmd": "window", "on": False})
        seconds = time.monotonic() - self._window_started
        samples: array[int] = array("q")
        for reply in replies:
            samples.frombytes(reply["latencies"])
        cpu = sum(r["cpu"] for r in replies) - cpu_at_start
        rate = sum(r["events"] / r["seconds"] for r in replies if r["seconds"] > 0)
        return Window(sum(r["events"] for r in replies), samples, cpu, seconds, rate)

    def drop(self, delay: float = 0.0) -> float:
        """Abort every connection at once; each reconnects with its last id. Returns when."""
        replies = self._all({"cmd": "drop", "delay": delay})
        return float(min(r["at"] for r in replies))

    def set_targets(self, targets: dict[str, int]) -> None:
        self._all({"cmd": "targets", "targets": targets})

    def final(self, last_seq: dict[str, int]) -> dict[str, Any]:
        replies = self._all({"cmd": "final", "last_seq": last_seq}, timeout=120)
        errors: list[str] = []
        for reply in replies:
            errors.extend(reply["id_errors"])
        return {
            "streams": sum(r["streams"] for r in replies),
            "events": sum(r["events"] for r in replies),
            "lost": sum(r["lost"] for r in replies),
            "duplicated": sum(r["duplicated"] for r in replies),
            "undelivered": sum(r["undelivered"] for r in replies),
            "refused_not_back": sum(r["refused_not_back"] for r in replies),
            "undelivered_refused": sum(r["undelivered_refused"] for r in replies),
            "silent_streams": sum(r["silent_streams"] for r in replies),
            "streams_with_id_errors": sum(r["streams_with_id_errors"] for r in replies),
            "id_errors": errors[:5],
        }

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send({"cmd": "close"})
            except OSError:
                continue
        for process in self._procs:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merge(dicts: Any) -> dict[Any, int]:
    merged: dict[Any, int] = {}
    for item in dicts:
        for key, value in item.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def merge_delays(snapshots: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The processes' `DelayStats` snapshots as one (histogram keys sorted, in ms)."""
    merged: dict[str, dict[str, Any]] = {}
    for snapshot in snapshots:
        for kind, entry in snapshot.items():
            into = merged.get(kind)
            if into is None:
                merged[kind] = {**entry, "histogram_ms": dict(entry["histogram_ms"])}
                continue
            into["count"] += entry["count"]
            into["total_s"] += entry["total_s"]
            into["min_s"] = min(into["min_s"], entry["min_s"])
            into["max_s"] = max(into["max_s"], entry["max_s"])
            for step, count in entry["histogram_ms"].items():
                into["histogram_ms"][step] = into["histogram_ms"].get(step, 0) + count
    for entry in merged.values():
        entry["total_s"] = round(entry["total_s"], 3)
        entry["mean_s"] = round(entry["total_s"] / entry["count"], 3) if entry["count"] else None
        entry["histogram_ms"] = {
            int(step): count for step, count in sorted(entry["histogram_ms"].items())
        }
    return merged
