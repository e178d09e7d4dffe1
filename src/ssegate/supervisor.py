"""`ssegate run --workers N`: one worker process per core, supervised.

Theory of operation:

1. Each worker is `ssegate run --worker FILE`: a whole gateway (its own topic readers, rings
   and streams) that binds the listeners with SO_REUSEPORT, so the kernel spreads new
   connections over the workers.
2. A worker that exits while the supervisor is not stopping is logged and started again;
   one that keeps dying within a second of its start is restarted at most once a second.
3. SIGTERM or SIGINT to the supervisor goes to every worker, which ends each stream with a
   checkpoint (clients reconnect, to any worker, and resume). A worker still there after
   `server.shutdown_timeout` plus a margin is killed. The supervisor exits when all are gone.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from ssegate.errors import ConfigError
from ssegate.wiring import CompiledConfig

logger = logging.getLogger("ssegate.supervisor")

KILL_MARGIN = 5.0  # seconds past the shutdown timeout before a worker is killed
RESTART_BACKOFF = 1.0


class Supervisor:
    def __init__(self, config_path: Path, compiled: CompiledConfig, workers: int, log_level: str):
        for index, listener in enumerate(compiled.config.listeners):
            if listener.port == 0:
                raise ConfigError(
                    f"{compiled.source}: listeners[{index}].port: 0 (a free port) cannot be "
                    f"shared by {workers} workers; choose a port"
                )
        self._command = [
            sys.executable,
            "-m",
            "ssegate",
            "--log-level",
            log_level,
            "run",
            "--worker",
            str(config_path),
        ]
        self._count = workers
        self._shutdown_timeout = float(compiled.config.server.shutdown_timeout)
        self._workers: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
        self._stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._forward)
        for index in range(self._count):
            self._start(index)
        while not self._stopping:
            for index, (process, started) in list(self._workers.items()):
                status = process.poll()
                if status is None or self._stopping:
                    continue
                logger.error(
                    "worker %d (pid %d) exited with status %s; restarting",
                    index,
                    process.pid,
                    status,
                )
                if time.monotonic() - started < RESTART_BACKOFF:
                    time.sleep(RESTART_BACKOFF)
                if not self._stopping:
                    self._start(index)
            time.sleep(0.1)
        return self._stop_all()

    def _start(self, index: int) -> None:
        process = subprocess.Popen(self._command)
        self._workers[index] = (process, time.monotonic())
        logger.info("worker %d started (pid %d)", index, process.pid)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        """SIGHUP (reload certificates) goes to every worker."""
        for process, _ in self._workers.values():
            if process.poll() is None:
                process.send_signal(signum)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            self._stopping = True
            logger.info("%s: stopping %d workers", signal.Signals(signum).name, self._count)

    def _stop_all(self) -> int:
        for process, _ in self._workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._shutdown_timeout + KILL_MARGIN
        for index, (process, _) in self._workers.items():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.error("worker %d (pid %d) did not stop in time; killing", index, process.pid)
                process.kill()
                process.wait()
        return 0
