"""Run `ssegate run` as a real process for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.waiting import WaitTimeout, until_sync


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    """`python -m ssegate run <config>` on a free port, stopped with SIGTERM."""

    def __init__(
        self,
        config: dict[str, Any],
        directory: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        tls: dict[str, Any] | None = None,
        client_tls: ssl.SSLContext | None = None,
        http2: dict[str, Any] | None = None,
        log_level: str = "INFO",
    ):
        self.port = port or free_port()
        # A client context that trusts the listener's certificate, when it speaks TLS.
        self.client_tls = client_tls
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        config = dict(config)
        listener: dict[str, Any] = {"host": "127.0.0.1", "port": self.port}
        if tls is not None:  # the listener's `tls` section
            listener["tls"] = tls
        if http2 is not None:  # the listener's `http2` section
            listener["http2"] = http2
        config.setdefault("listeners", [listener])
        self.config_file = directory / "ssegate.yaml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_file = directory / f"gateway-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.args = args
        self.log_level = log_level

    @property
    def base(self) -> str:
        scheme = "https" if self.client_tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout: float = 30.0) -> GatewayProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ssegate",
                    "--log-level",
                    self.log_level,
                    "run",
                    *self.args,
                    str(self.config_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        path = "/ready" if wait_ready else "/health"
        process = self.process

        def answers_200() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited {process.returncode}:\n{self.log()}")
            # A refused connection or a 503 (urllib's HTTPError) is an OSError: not yet.
            with urllib.request.urlopen(  # noqa: S310
                self.base + path, timeout=1, context=self.client_tls
            ) as response:
                return bool(response.status == 200)

        try:
            until_sync(
                answers_200,
                timeout,
                interval=0.1,
                message=f"gateway {path} to answer 200",
                ignoring=(OSError,),
            )
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\ngateway log:\n{self.log()}") from None
        return self

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        return process.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
