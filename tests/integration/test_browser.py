"""A real browser: Chromium (Debian's, driven by Playwright) opens ten EventSources to one
HTTPS origin. Over HTTP/1.1 the seventh would wait for a free connection; over HTTP/2 all
ten stream at once on one connection, and each resumes exactly after a gateway restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.async_api import async_playwright

from tests.support.browser import chromium_binary
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.pki import client_context, issue
from tests.support.sse_client import request
from tests.support.tokens import AUDIENCE, ISSUER, Issuer, JwksServer
from tests.support.waiting import until

pytestmark = pytest.mark.kafka

Gateways = Callable[..., GatewayProcess]

STREAMS = 10
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>ten streams</title>
<script>
  window.received = {};
  window.opened = 0;
  for (let i = 0; i < STREAMS; i++) {
    const key = "k" + i;
    window.received[key] = [];
    const source = new EventSource("/key/" + key);
    source.onopen = () => { window.opened += 1; };
    source.onmessage = (event) => {
      window.received[key].push({data: event.data, id: event.lastEventId});
    };
  }
</script>
""".replace("STREAMS", str(STREAMS))


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_binary()


def spki_pin(certificate: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: base64 of the SHA-256
    of the certificate's public key. Chromium then trusts that key, and no other."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


async def test_ten_event_sources_share_one_h2_connection_and_resume_after_a_restart(
    kafka: KafkaCluster, gateways: Gateways, tmp_path: Path, chromium: str
) -> None:
    topic = kafka.new_topic(partitions=3)
    ca = trustme.CA()
    cert = issue(ca, tmp_path / "pki", "server")
    page_file = tmp_path / "ten.html"
    page_file.write_text(PAGE)
    route = {"path": "/key/{k}", "topic": topic, "filters": [{"key": "${params.k}"}]}
    sections = {"static": {"/ten.html": str(page_file)}, "sse": {"retry": 300}}
    gateway = gateways([route], tls=cert.section(), client_tls=client_context(ca), **sections)
    keys = [f"k{i}" for i in range(STREAMS)]

    async def produce(first: int) -> None:
        records = [
            Record(f"{key}-{n}".encode(), key=key.encode())
            for n in range(first, first + 5)
            for key in keys
        ]
        await asyncio.to_thread(kafka.produce, topic, records)

    async def gateway_metrics() -> str:
        return (await request(gateway.port, "/metrics", tls=client_context(ca))).body.decode()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                f"--ignore-certificate-errors-spki-list={spki_pin(cert.certificate)}",
            ],
        )
        page = await browser.new_page()
        await page.goto(f"https://127.0.0.1:{gateway.port}/ten.html")
        await page.wait_for_function(f"window.opened === {STREAMS}", timeout=15_000)

        # All ten are open at once: past HTTP/1.1's six, on one connection (ours for
        # /metrics is the other).
        text = await gateway_metrics()
        assert f'ssegate_streams_open{{route="/key/{{k}}"}} {STREAMS}' in text
        assert re.search(r"^ssegate_connections_open 2(\.0)?$", text, re.MULTILINE), text
        protocol = await page.evaluate(
            "performance.getEntriesByType('navigation')[0].nextHopProtocol"
        )
        assert protocol == "h2"

        await produce(0)
        await page.wait_for_function(
            "Object.values(window.received).every(list => list.length === 5)", timeout=15_000
        )

        # Restart the gateway on the same port: every EventSource reconnects with its
        # Last-Event-ID after `retry:` (300 ms) and resumes where it stopped.
        gateway.stop()
        await produce(5)  # while it is down
        gateway.start()
        await until(
            gateway_metrics,
            20,
            accept=lambda text: f'ssegate_streams_open{{route="/key/{{k}}"}} {STREAMS}' in text,
            message="the ten EventSources to reconnect",
        )
        await produce(10)
        await page.wait_for_function(
            "Object.values(window.received).every(list => list.length === 15)", timeout=20_000
        )
        received = await page.evaluate("window.received")
        for key in keys:
            assert [event["data"] for event in received[key]] == [
                f"{key}-{n}" for n in range(15)
            ], key
        text = await gateway_metrics()
        resumed = re.findall(
            r'ssegate_resume_total\{route="/key/\{k\}",outcome="(\w+)"\} (\d+)', text
        )
        # Every one resumed by its id (from the new process's ring or a catch-up reader).
        assert {outcome for outcome, _ in resumed} <= {"ring", "catchup"}, resumed
        assert sum(int(count) for _, count in resumed) == STREAMS
        await browser.close()


RENEWING_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>renewing</title>
<script>
  window.received = []; window.challenges = 0; window.opens = 0; window.errors = 0;
  const tokenUrl = "TOKEN_URL";
  const fresh = async () => (await fetch(tokenUrl)).text();
  (async () => {
    let token = await fresh();
    const source = new EventSource("/mine?access_token=" + encodeURIComponent(token));
    source.onopen = () => { window.opens += 1; };
    source.onerror = () => { window.errors += 1; };
    source.onmessage = (event) => { window.received.push(event.data); };
    source.addEventListener("challenge", async () => {
      window.challenges += 1;
      token = await fresh();
      await fetch("/mine", {
        method: "POST",
        headers: {"Content-Type": "application/x-challenge-response",
                  "Authorization": "Bearer " + token},
      });
    });
  })();
</script>
"""


async def test_a_page_renews_its_token_on_challenge_and_never_reconnects(
    kafka: KafkaCluster, gateways: Gateways, tmp_path: Path, chromium: str
) -> None:
    topic = kafka.new_topic(partitions=1)
    issuer = Issuer()
    with JwksServer(issuer).running() as jwks:
        lifetime = 4  # seconds a token lives; the challenge comes 2 s before its end
        page_file = tmp_path / "renewing.html"
        page_file.write_text(
            RENEWING_PAGE.replace("TOKEN_URL", f"{jwks.base}/token?sub=alice&ttl={lifetime}")
        )
        guard = {
            "type": "jwt",
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "keys": jwks.url,
            "challenge": "2s",
        }
        route = {
            "path": "/mine",
            "topic": topic,
            "filters": [{"key": "${guarded['jwt0'].identity}"}],
            "guarded": {"jwt0": ["read:notes"]},
        }
        gateway = gateways(
            [route], guards={"jwt0": guard}, static={"/renewing.html": str(page_file)}
        )
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox"]
            )
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{gateway.port}/renewing.html")
            await page.wait_for_function("window.opens === 1", timeout=15_000)
            started = time.monotonic()
            sent = 0
            # Three token lifetimes and more, a record now and then.
            while time.monotonic() - started < 3 * lifetime + 2:
                await asyncio.to_thread(
                    kafka.produce, topic, [Record(f"note {sent}".encode(), key=b"alice")]
                )
                sent += 1
                await asyncio.sleep(1)
            await page.wait_for_function(f"window.received.length === {sent}", timeout=15_000)
            state = await page.evaluate(
                "({opens: window.opens, errors: window.errors, challenges: window.challenges,"
                " received: window.received})"
            )
            await browser.close()
    assert state["received"] == [f"note {n}" for n in range(sent)]
    assert state["challenges"] >= 3
    assert (state["opens"], state["errors"]) == (1, 0)  # one stream, never reconnected
    assert jwks.tokens_issued >= 4
