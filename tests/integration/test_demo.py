"""`ssegate demo` (what `make demo` runs): everything starts, streams flow, Ctrl-C stops all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.async_api import async_playwright

from tests.support.browser import chromium_binary
from tests.support.gateway import free_port

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).parents[2] / "examples"


@contextlib.contextmanager
def demo_running(
    tmp_path: Path,
    *args: str,
    example: str = "fanout",
    adapt: Callable[[dict[str, Any], str], tuple[dict[str, Any], str]] = lambda c, p: (c, p),
) -> Iterator[tuple[int, list[str]]]:
    """`ssegate demo` with `examples/<example>` on a free port until it printed its curl
    command: (port, output). `adapt` may change the config and the page first. Interrupted
    afterwards, it must stop everything it started."""
    config = yaml.safe_load((EXAMPLES / example / "ssegate.yaml").read_text())
    port = free_port()
    config["listeners"][0]["port"] = port  # 7114 may be taken on a developer's machine
    page_file = EXAMPLES / example / config["static"]["/"]
    config, page = adapt(config, page_file.read_text())
    config["static"]["/"] = "index.html"
    (tmp_path / "ssegate.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "index.html").write_text(page)
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
            if line.startswith("  curl -N"):
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


def secure_on_free_ports(challenge: str = "20s") -> Callable[..., tuple[dict[str, Any], str]]:
    """The secure example with its token issuer on a free port (7115 may be taken)."""
    issuer = f"http://127.0.0.1:{free_port()}"

    def adapt(config: dict[str, Any], page: str) -> tuple[dict[str, Any], str]:
        config["guards"]["demo"]["issuer"] = issuer
        config["guards"]["demo"]["challenge"] = challenge
        return config, page.replace('"http://127.0.0.1:7115"', json.dumps(issuer))

    adapt.issuer = issuer  # type: ignore[attr-defined]
    return adapt


def demo_token(issuer: str, user: str) -> str:
    """A client-credentials token from the demo's issuer, as the example's comments say."""
    answer = subprocess.run(
        [
            "curl",
            "-sS",
            "-d",
            "grant_type=client_credentials",
            "-u",
            f"{user}:{user}",
            f"{issuer}/token",
        ],
        capture_output=True,
        check=True,
    )
    body = json.loads(answer.stdout)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 60
    return str(body["access_token"])


def curl_stream(url: str, *options: str, seconds: int = 4) -> bytes:
    result = subprocess.run(
        ["curl", "-sN", "--max-time", str(seconds), *options, url],
        capture_output=True,
        check=False,
    )
    return result.stdout


def test_secure_demo_streams_only_with_a_token_and_each_desk_its_own(tmp_path: Path) -> None:
    adapt = secure_on_free_ports()
    issuer = adapt.issuer  # type: ignore[attr-defined]
    with demo_running(tmp_path, example="secure", adapt=adapt) as (port, output):
        text = "".join(output)
        assert f"token issuer {issuer} for guard 'demo'" in text
        assert f"-u alice:alice {issuer}/token" in text
        base = f"http://127.0.0.1:{port}"
        assert f'  curl -N -H "Authorization: Bearer $TOKEN" {base}/quotes/AAPL\n' in output

        alice = demo_token(issuer, "alice")
        assert_aapl_quotes(
            curl_stream(f"{base}/quotes/AAPL", "-H", f"Authorization: Bearer {alice}")
        )

        # Without a token: 401 and a Bearer challenge; carol has no role: 403.
        refused = curl_stream(f"{base}/quotes/AAPL", "-i")
        assert refused.startswith(b"HTTP/1.1 401 "), refused
        assert re.search(rb'\r\n(?i:www-authenticate): Bearer realm="ssegate"\r\n', refused)
        carol = demo_token(issuer, "carol")
        forbidden = curl_stream(f"{base}/quotes/AAPL", "-i", "-H", f"Authorization: Bearer {carol}")
        assert forbidden.startswith(b"HTTP/1.1 403 "), forbidden
        assert re.search(
            rb'\r\n(?i:www-authenticate): Bearer realm="ssegate", error="insufficient_scope",'
            rb' scope="quotes:read"\r\n',
            forbidden,
        ), forbidden

        # /desk filters by the token's `desk` claim: bob (nyse) sees IBM and KO only.
        bob = demo_token(issuer, "bob")
        desk = curl_stream(f"{base}/desk?access_token={bob}", seconds=3)
        quotes = [json.loads(data) for data in re.findall(rb"data:(\{.*\})\n", desk)]
        assert quotes, desk
        assert {quote["symbol"] for quote in quotes} == {"IBM", "KO"}
        # A wrong secret gets no token.
        wrong = subprocess.run(
            [
                "curl",
                "-sS",
                "-w",
                "%{http_code}",
                "-d",
                "grant_type=client_credentials",
                "-u",
                "alice:bob",
                f"{issuer}/token",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert wrong.stdout.endswith("401")
    assert alice not in "".join(output), "a token must never be printed by the gateway"


async def test_secure_demo_page_signs_in_and_renews_in_band(tmp_path: Path) -> None:
    # Tokens live 60 s; a challenge 58 s before the end comes 2 s after each token.
    adapt = secure_on_free_ports(challenge="58s")
    with demo_running(tmp_path, example="secure", adapt=adapt) as (port, _):
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium_binary(), args=["--no-sandbox"]
            )
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.click("button[data-user=alice]")
            # Each renewal is accepted only if the one before it was: a session's next
            # challenge is armed by the renewal that extended it.
            await page.wait_for_function(
                "Number(document.getElementById('renewals').textContent) >= 3", timeout=30_000
            )
            symbols = await page.eval_on_selector_all(
                "#prices tr td:first-child", "cells => cells.map(c => c.textContent)"
            )
            status = await page.text_content("#status")
            await page.click("button[data-user=carol]")
            await page.wait_for_function(
                "document.getElementById('status').textContent.includes('may not read')",
                timeout=15_000,
            )
            await browser.close()
    assert status == "signed in as alice; streaming"
    assert set(symbols) == {"AAPL", "MSFT", "GOOG", "AMZN", "NVDA"}


def test_avro_demo_runs_its_registry_and_streams_json(tmp_path: Path) -> None:
    registry_port = free_port()

    def adapt(config: dict[str, Any], page: str) -> tuple[dict[str, Any], str]:
        url = f"http://127.0.0.1:{registry_port}/apis/ccompat/v7"
        config["catalogs"]["registry"]["url"] = url
        return config, page

    with demo_running(tmp_path, example="avro", adapt=adapt) as (port, output):
        text = "".join(output)
        assert "quotes are Avro, schema id " in text
        assert f"schema registry ready at http://127.0.0.1:{registry_port}/apis/ccompat/v7" in text
        base = f"http://127.0.0.1:{port}"
        # A filter on a field of the decoded value: AAPL's quotes, as JSON, none missing.
        quotes = curl_stream(f"{base}/events/AAPL")
        events = re.findall(rb"id:(\S+)\ndata:(\{.*\})\n\n", quotes)
        assert len(events) >= 3, quotes
        decoded = [json.loads(data) for _, data in events]
        assert {quote["symbol"] for quote in decoded} == {"AAPL"}
        assert [quote["seq"] for quote in decoded] == list(range(1, len(decoded) + 1))
        # timestamp-millis as RFC 3339 in UTC (docs/schemas.md)
        assert all(
            re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", quote["ts"])
            for quote in decoded
        ), decoded
        assert set(decoded[0]) == {"symbol", "price", "seq", "ts"}
        # The registry holds the schema the records name.
        subject = subprocess.run(
            ["curl", "-s", f"http://127.0.0.1:{registry_port}/apis/ccompat/v7/subjects"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(subject.stdout) == ["events-value"]
