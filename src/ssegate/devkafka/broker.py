"""Run one single-node Kafka broker (KRaft, broker and controller in one JVM) on loopback.

Theory of operation:

1. A *home* directory holds everything about one broker: `state.json` (pid, ports, data
   directory), `server.properties`, `log4j2.properties`, `broker.log`, and by default the
   data directory itself. `status` and `stop` work from `state.json` alone, so the process
   that started the broker need not be the one that stops it.
2. The broker binds 127.0.0.1 only. The client port is `--port` or a free one; the
   controller port is always a free one (remembered with `--data`, so a kept data
   directory restarts on the same quorum address).
3. Data is fresh on every start unless a data directory is given; a fresh one is deleted
   on stop.
4. `start` returns only when the broker answered a metadata request. If the JVM exits
   first, the error carries the end of its log.
5. `stop` sends SIGTERM to the broker's process group, then SIGKILL after a timeout, and
   returns only when the process is gone.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from ssegate.devkafka.jars import Progress, default_cache_root, ensure_jars
from ssegate.devkafka.java import find_java
from ssegate.devkafka.topics import admin_client
from ssegate.errors import BrokerExited, DevKafkaError, PortInUse

HOST = "127.0.0.1"

# Sized for 2-core, 24 GiB machines: a test broker needs far less than Kafka's 1 GiB default.
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:ActiveProcessorCount=2",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

DEFAULT_START_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 30.0
_SAVED_PORTS = "ssegate-devkafka.json"

logger = logging.getLogger("ssegate.devkafka")


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A broker this home started: where it listens and where its files are."""

    pid: int
    port: int
    controller_port: int
    data_dir: str
    keep_data: bool
    log_file: str

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """$SSEGATE_DEVKAFKA_HOME, else $XDG_STATE_HOME/ssegate/devkafka (~/.local/state/…)."""
    env = os.environ if environ is None else environ
    if env.get("SSEGATE_DEVKAFKA_HOME"):
        return Path(env["SSEGATE_DEVKAFKA_HOME"])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ssegate" / "devkafka"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether the broker could listen on `port`: like Java's server sockets, SO_REUSEADDR
    is set, so connections of a stopped broker lingering in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in unpadded base64url, 22 characters.

    Like Kafka's own `Uuid.randomUuid()`, never one starting with `-`: a command line would
    read it as an option (one in 64 random ids does).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"


def _process_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces; the state follows it.
    return stat.rpartition(")")[2].split()[0]


def _is_our_broker(pid: int, properties: Path) -> bool:
    state = _process_state(pid)
    if state is None or state == "Z":
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(properties).encode() in cmdline


class DevKafka:
    """Start, inspect and stop the broker that lives in one home directory."""

    def __init__(
        self,
        home: Path | None = None,
        *,
        cache_root: Path | None = None,
        environ: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.home = (home or default_home(self.environ)).absolute()
        self.cache_root = cache_root or default_cache_root(self.environ)
        self._progress = progress
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        info = self.status()
        where = f"running at {info.bootstrap} pid={info.pid}" if info else "stopped"
        return f"<DevKafka home={self.home} {where}>"

    # -- paths -----------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.home / "state.json"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    # -- public operations -----------------------------------------------------------------

    def status(self) -> BrokerInfo | None:
        """The running broker of this home, or None (a stale state file is removed)."""
        info = self._read_state()
        if info is None:
            return None
        if self._alive(info.pid):
            return info
        self.state_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        timeout: float = DEFAULT_START_TIMEOUT,
        properties: Mapping[str, str] | None = None,
    ) -> BrokerInfo:
        """Start the broker and return once it answers a metadata request."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self._locked():
            running = self.status()
            if running is not None:
                if port is not None and port != running.port:
                    raise DevKafkaError(
                        f"a broker from {self.home} already runs at {running.bootstrap}; "
                        "stop it first (ssegate devkafka stop), or use another --home"
                    )
                self._say(f"already running (pid {running.pid})")
                return running
            java = find_java(self.environ)
            libs = ensure_jars(self.cache_root, self.environ, self._progress)
            keep_data = data_dir is not None
            data = (data_dir or self.home / "data").absolute()
            if not keep_data:
                shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True, exist_ok=True)
            saved = self._saved_ports(data)
            client_port = self._choose_port(port, saved.get("port"))
            controller_port = self._choose_port(None, saved.get("controller_port"), client_port)
            self._write_config(data, client_port, controller_port, properties or {})
            classpath = f"{libs}{os.sep}*"
            jvm = [
                str(java.executable),
                *JVM_OPTIONS,
                f"-Dkafka.logs.dir={self.home / 'logs'}",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "-cp",
                classpath,
            ]
            if not (data / "meta.properties").exists():
                self._format(jvm, data)
            (data / _SAVED_PORTS).write_text(
                json.dumps({"port": client_port, "controller_port": controller_port}) + "\n"
            )
            self._say(f"starting Kafka on {HOST}:{client_port} (Java {java.major})")
            with self.log_file.open("wb") as log:
                self._process = subprocess.Popen(
                    [*jvm, "kafka.Kafka", str(self.properties_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.home,
                    start_new_session=True,  # its own process group: stop signals all of it
                )
            info = BrokerInfo(
                pid=self._process.pid,
                port=client_port,
                controller_port=controller_port,
                data_dir=str(data),
                keep_data=keep_data,
                log_file=str(self.log_file),
            )
            self.state_file.write_text(json.dumps(asdict(info), indent=2) + "\n")
            try:
                self._wait_ready(info, time.monotonic() + timeout)
            except BaseException:
                self._stop(info, DEFAULT_STOP_TIMEOUT)
                raise
            return info

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> BrokerInfo | None:
        """Stop the broker (TERM, then KILL after `timeout`); the stopped one, or None."""
        if not self.home.exists():
            return None
        with self._locked():
            info = self._read_state()
            if info is None:
                return None
            self._stop(info, timeout)
            return info

    # -- steps -----------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)
        else:
            logger.info("%s", message)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.home / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read_state(self) -> BrokerInfo | None:
        try:
            raw = json.loads(self.state_file.read_text())
            return BrokerInfo(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        return _is_our_broker(pid, self.properties_file)

    @staticmethod
    def _saved_ports(data: Path) -> dict[str, int]:
        try:
            raw = json.loads((data / _SAVED_PORTS).read_text())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in raw.items() if isinstance(v, int)}

    @staticmethod
    def _choose_port(requested: int | None, saved: int | None, *taken: int) -> int:
        if requested is not None:
            if not port_is_free(requested):
                raise PortInUse(
                    f"port {requested} on {HOST} is already in use; choose another with "
                    "--port, or leave --port out to get a free one"
                )
            return requested
        if saved is not None and saved not in taken and port_is_free(saved):
            return saved
        while True:
            port = free_port()
            if port not in taken:
                return port

    def _write_config(
        self, data: Path, port: int, controller_port: int, overrides: Mapping[str, str]
    ) -> None:
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.segment.bytes": str(16 * 1024 * 1024),
        }
        properties.update(overrides)
        text = "".join(f"{key}={value}\n" for key, value in properties.items())
        self.properties_file.write_text(text)
        log4j = resources.files(__package__).joinpath("log4j2.properties").read_text()
        (self.home / "log4j2.properties").write_text(log4j)

    def _format(self, jvm: list[str], data: Path) -> None:
        cluster_id = new_cluster_id()
        self._say("formatting KRaft storage")
        result = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                f"--config={self.properties_file}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            said = (result.stdout + result.stderr).strip().splitlines()[-20:]
            raise DevKafkaError(
                f"formatting the broker's storage in {data} failed "
                f"(exit status {result.returncode}):\n  " + "\n  ".join(said)
            )

    def _wait_ready(self, info: BrokerInfo, deadline: float) -> None:
        log = Path(info.log_file)
        while True:
            if not self._alive(info.pid):
                status = self._process.returncode if self._process is not None else None
                self.state_file.unlink(missing_ok=True)
                raise BrokerExited(
                    f"the Kafka broker exited (status {status}) while starting; "
                    f"the end of its log {log}:\n{log_tail(log)}"
                )
            if self._answers_metadata(info.bootstrap):
                self._say(f"ready at {info.bootstrap}")
                return
            if time.monotonic() > deadline:
                raise DevKafkaError(
                    f"the Kafka broker did not answer a metadata request at {info.bootstrap} "
                    f"in time; the end of its log {log}:\n{log_tail(log)}"
                )
            time.sleep(0.2)

    @staticmethod
    def _answers_metadata(bootstrap: str) -> bool:
        host, _, port = bootstrap.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return False
        try:
            metadata = admin_client(bootstrap).list_topics(timeout=5)
        except Exception:  # librdkafka raises KafkaException while the broker settles
            return False
        return bool(metadata.brokers)

    def _stop(self, info: BrokerInfo, timeout: float) -> None:
        if self._alive(info.pid):
            self._say(f"stopping the broker (pid {info.pid})")
            self._signal(info.pid, signal.SIGTERM)
            if not self._wait_gone(info.pid, timeout):
                logger.warning("the broker ignored SIGTERM for %.0fs; killing it", timeout)
                self._signal(info.pid, signal.SIGKILL)
                if not self._wait_gone(info.pid, 10.0):
                    raise DevKafkaError(f"the broker (pid {info.pid}) survived SIGKILL")
        if self._process is not None and self._process.pid == info.pid:
            self._process.wait()
            self._process = None
        if not info.keep_data:
            shutil.rmtree(info.data_dir, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)

    @staticmethod
    def _signal(pid: int, signum: signal.Signals) -> None:
        try:
            os.killpg(pid, signum)  # the broker leads its own process group
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, signum)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return True
            time.sleep(0.1)
        return not self._alive(pid)
