"""`ssegate demo` (what `make demo` runs): everything starts, streams flow, Ctrl-C stops all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.gateway import free_port

pytestmark = pytest.mark.kafka

EXAMPLE = Path(__file__).parents[2] / "examples" / "fanout"


@contextlib.contextmanager
def demo_running(tmp_path: Path, *args: str) -> Iterator[tuple[int, list[str]]]:
    """`ssegate demo` on a free port until it printed its curl command: (port, output).
    Interrupted afterwards, it must stop everything it started."""
    config = yaml.safe_load((EXAMPLE / "ssegate.yaml").read_text())
    port = free_port()
    config["listeners"][0]["port"] = port  # 7114 may be taken on a developer's machine
    (tmp_path / "ssegate.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(EXAMPLE / "index.html", tmp_path / "index.html")
    env = dict(os.environ)
    env.pop("KAFKA_BOOTSTRAP", None)
    env["SSEGATE_DEVKAFKA_HOME"] = str(tmp_path / "state" / "devkafka")
    command = [sys.executable, "-m", "ssegate", "demo", "--config", str(tmp_path / "ssegate.yaml")]
    demo = subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    assert demo.stdout is not None
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = demo.stdout.readline().decode()
            output.append(line)
            if "curl -N" in line:
                break
        else:
            pytest.fail("the demo did not print its curl command:\n" + "".join(output))
        yield port, output
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        output.append(rest.decode())
    assert demo.returncode == 0, "".join(output)
    assert "demo: stopped" in "".join(output)
    kafka_state = tmp_path / "state" / "demo-kafka" / "state.json"
    assert not kafka_state.exists(), "the demo's broker was stopped"


def assert_aapl_quotes(curl_output: bytes) -> None:
    """At least three AAPL quotes, their per-symbol sequence from 1 on, none missing."""
    events = re.findall(rb"id:(\S+)\ndata:(\{.*\})\n\n", curl_output)
    assert len(events) >= 3, curl_output
    quotes = [json.loads(data) for _, data in events]
    assert {q["symbol"] for q in quotes} == {"AAPL"}
    assert [q["seq"] for q in quotes] == list(range(1, len(quotes) + 1))


def test_demo_end_to_end(tmp_path: Path) -> None:
    with demo_running(tmp_path) as (port, output):
        assert f"  curl -N http://127.0.0.1:{port}/events/AAPL/nasdaq\n" in output
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b'new EventSource("/events")' in page.read()
        curl = subprocess.run(
            ["curl", "-sN", "--max-time", "4", f"http://127.0.0.1:{port}/events/AAPL/nasdaq"],
            capture_output=True,
            check=False,
        )
        assert_aapl_quotes(curl.stdout)


def test_demo_over_https_with_its_own_ca(tmp_path: Path) -> None:
    ca = tmp_path / "state" / "demo-tls" / "ca.pem"
    url = "https://localhost:{port}/events/AAPL/nasdaq"
    with demo_running(tmp_path, "--tls") as (port, output):
        assert f"  curl -N --cacert {ca} {url.format(port=port)}\n" in output
        curl = subprocess.run(
            ["curl", "-sSN", "--max-time", "4", "--cacert", str(ca), url.format(port=port)],
            capture_output=True,
            check=False,
        )
        assert_aapl_quotes(curl.stdout)
        refused = subprocess.run(
            ["curl", "-sS", "--max-time", "4", f"https://localhost:{port}/health"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 60, "without the demo's CA, curl refuses the certificate"
    # A second run reuses the same CA: a browser that trusted it keeps trusting it.
    first = ca.read_bytes()
    with demo_running(tmp_path, "--tls"):
        assert ca.read_bytes() == first
