"""The Python stack peer: uvicorn serving peers/python_stack/app.py from .venv-peers."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from benchmarks import install
from benchmarks.system import free_port, wait_http
from benchmarks.targets.base import Feed, Target

APP_DIR = install.BENCH / "peers" / "python_stack"


class PythonStack(Target):
    name = "python_stack"
    label = "Starlette + sse-starlette + aiokafka (uvicorn)"
    id_kind = "offsets"
    terminator = b"\r\n\r\n"  # sse-starlette's default separator is CRLF
    listen_backlog = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs = 0

    def available(self) -> str | None:
        try:
            install.peers_venv()
        except install.InstallError as exc:
            return str(exc)
        return None

    def start(self, feeds: list[Feed], workers: int = 1) -> None:
        self.port = self.control_port = free_port()
        self.runs += 1
        directory = self.context.run_dir / f"python-stack-{self.runs}"
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "uvicorn.log"
        uvicorn = install.PEERS_VENV / "bin" / "uvicorn"
        command = [
            str(uvicorn),
            "app:app",
            "--app-dir",
            str(APP_DIR),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--backlog",
            str(self.listen_backlog),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "2",
        ]
        if workers > 1:
            command += ["--workers", str(workers)]
        env = dict(os.environ, PEER_BOOTSTRAP=self.context.bootstrap)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(f"http://127.0.0.1:{self.port}/health", 60, alive=self.alive)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"the Python stack did not start: {exc}\n{self.log_tail()}") from exc

    def path(self, feed: Feed, key: str | None = None) -> str:
        if feed.filtered:
            assert key is not None
            return f"/topics/{feed.topic}/keys/{key}?start={feed.start}"
        return f"/topics/{feed.topic}?start={feed.start}"
