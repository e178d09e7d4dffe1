"""`ssegate demo` (what `make demo` runs): everything starts, streams flow, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.gateway import free_port

pytestmark = pytest.mark.kafka

EXAMPLE = Path(__file__).parents[2] / "examples" / "fanout"


def test_demo_end_to_end(tmp_path: Path) -> None:
    config = yaml.safe_load((EXAMPLE / "ssegate.yaml").read_text())
    port = free_port()
    config["listeners"][0]["port"] = port  # 7114 may be taken on a developer's machine
    (tmp_path / "ssegate.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(EXAMPLE / "index.html", tmp_path / "index.html")
    env = dict(os.environ)
    env.pop("KAFKA_BOOTSTRAP", None)
    env["SSEGATE_DEVKAFKA_HOME"] = str(tmp_path / "state" / "devkafka")
    demo = subprocess.Popen(
        [sys.executable, "-m", "ssegate", "demo", "--config", str(tmp_path / "ssegate.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
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
        assert f"  curl -N http://127.0.0.1:{port}/events/AAPL/nasdaq\n" in output
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b'new EventSource("/events")' in page.read()

        curl = subprocess.run(
            ["curl", "-sN", "--max-time", "4", f"http://127.0.0.1:{port}/events/AAPL/nasdaq"],
            capture_output=True,
            check=False,
        )
        events = re.findall(rb"id:(\S+)\ndata:(\{.*\})\n\n", curl.stdout)
        assert len(events) >= 3, curl.stdout
        quotes = [json.loads(data) for _, data in events]
        assert {q["symbol"] for q in quotes} == {"AAPL"}
        assert [q["seq"] for q in quotes] == list(range(1, len(quotes) + 1))
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        output.append(rest.decode())
    assert demo.returncode == 0, "".join(output)
    assert "demo: stopped" in "".join(output)
    kafka_state = tmp_path / "state" / "demo-kafka" / "state.json"
    assert not kafka_state.exists(), "the demo's broker was stopped"
