"""The nchan peer: Debian's nginx with libnginx-mod-nchan, configured in a temp prefix.

Records reach it through its HTTP publisher (`POST /pub/<channel>`) at the same rate the
Kafka producer runs for the others; subscribers use its EventSource mode
(`GET /sub/<channel>`), whose ids are `time:tag`. A fan-out feed is one channel; a filtered
feed is one channel per key (nchan has no filters: the channel is the filter). The message
buffer holds 10,000 messages per channel so a resume storm can be served from it, as
ssegate's ring serves it. `keepalive_requests` is raised from nginx's 1,000 so the publisher's
one connection lasts the run.
"""

from __future__ import annotations

import resource
import subprocess
from typing import Any

from benchmarks import install
from benchmarks.certificates import server_certificate
from benchmarks.producers.nchan import nchan_publisher
from benchmarks.producers.pacing import ProducerHandle
from benchmarks.system import free_port, wait_http
from benchmarks.targets.base import Feed, Target

CONFIG = """\
load_module {module};
worker_processes {workers};
worker_rlimit_nofile {fd_limit};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{
    worker_connections {connections};
    multi_accept on;
}}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 3600s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    client_body_buffer_size 16k;
    nchan_shared_memory_size 1024m;
    server {{
        listen 127.0.0.1:{port} backlog={backlog}{reuseport};
{tls}        location = /health {{
            return 200 "ok\\n";
        }}
        location ~ ^/pub/(.+)$ {{
            nchan_publisher;
            nchan_channel_id $1;
            nchan_message_buffer_length 10000;
            nchan_message_timeout 10m;
        }}
        location ~ ^/sub/(.+)$ {{
            nchan_subscriber eventsource;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
        }}
    }}
}}
"""


class Nchan(Target):
    name = "nchan"
    label = "nchan 1.3.6 (nginx 1.22, Debian)"
    id_kind = "nchan"
    terminator = b"\n\n"
    kafka = False
    listen_backlog = 4096

    def __init__(self, *args: Any, tls: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tls = tls
        if tls:
            self.name = "nchan_tls"
            self.label = "nchan 1.3.6 (nginx 1.22, Debian), TLS"
        self.runs = 0
        self.binary = ""

    def available(self) -> str | None:
        try:
            self.binary = install.nchan()
        except install.InstallError as exc:
            return str(exc)
        return None

    def start(self, feeds: list[Feed], workers: int = 1) -> None:
        if not self.binary:
            self.binary = install.nchan()
        self.control_port = free_port()
        self.port = free_port() if self.tls else self.control_port
        self.runs += 1
        fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # what nginx inherits
        prefix = self.context.run_dir / f"nchan-{self.runs}"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        config = prefix / "nginx.conf"
        config.write_text(
            CONFIG.format(
                module=install.NCHAN_MODULE,
                workers=workers,
                prefix=prefix,
                port=self.control_port,
                backlog=self.listen_backlog,
                tls=self._tls_listen(),
                fd_limit=fd_limit,
                connections=fd_limit - 100,
                # Several workers: the kernel spreads connections evenly (as ssegate's
                # SO_REUSEPORT does), so none passes its fd limit while others idle.
                reuseport=" reuseport" if workers > 1 else "",
            )
        )
        self.log_path = prefix / "error.log"
        with (prefix / "stdout.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-p", str(prefix), "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_http(f"http://127.0.0.1:{self.control_port}/health", 30, alive=self.alive)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"nginx/nchan did not start: {exc}\n{self.log_tail()}") from exc

    def _tls_listen(self) -> str:
        """The subscribers' TLS port: nginx's defaults otherwise (TLS 1.2 and 1.3, its
        cipher list, no session cache), as ssegate's listener."""
        if not self.tls:
            return ""
        certificate, key = server_certificate(self.context.run_dir / "tls")
        return (
            f"        listen 127.0.0.1:{self.port} ssl backlog={self.listen_backlog};\n"
            f"        ssl_certificate {certificate};\n"
            f"        ssl_certificate_key {key};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        )

    def channel(self, feed: Feed, key: str | None = None) -> str:
        return f"{feed.topic}.{key}" if feed.filtered and key is not None else feed.topic

    def path(self, feed: Feed, key: str | None = None) -> str:
        return f"/sub/{self.channel(feed, key)}"

    def producer(
        self, feed: Feed, keys: list[str], rate: float, partitions: list[int] | None
    ) -> ProducerHandle:
        channels = [self.channel(feed, key if feed.filtered else None) for key in keys]
        return nchan_publisher(self.control_port, channels, keys, rate)
