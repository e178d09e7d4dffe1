"""docs/schemas.md's examples work as written: every YAML block passes `ssegate check`, and
the inline catalog's end-to-end block streams the JSON the page says."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
import trustme
import yaml

from ssegate import wiring
from ssegate.devkafka.topics import create_topic
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.sse_client import open_stream

PAGE = Path(__file__).parents[2] / "docs" / "schemas.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S)
END_TO_END = PAGE.read_text().split("### An inline catalog, end to end", 1)[1]


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_yaml_block_passes_the_check(block: str, tmp_path: Path) -> None:
    document = yaml.safe_load(block)
    if "routes" not in document:  # a fragment: the filters of one route
        document = {"routes": [{"path": "/q/{symbol}", "topic": "quotes", **document}]}
    document["kafka"] = {"bootstrap_servers": "127.0.0.1:9092"}
    for catalog in document.get("catalogs", {}).values():
        if catalog.get("trust"):
            trustme.CA().cert_pem.write_to_path(str(tmp_path / catalog["trust"]))
        for subject in catalog.get("subjects", {}).values():
            if "file" in subject:  # the page's JSON Schema file
                (tmp_path / subject["file"]).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / subject["file"]).write_text('{"type": "object"}')
    environ = {"REGISTRY_PASSWORD": "secret"}
    compiled = wiring.parse(yaml.safe_dump(document), base_dir=tmp_path, environ=environ)
    assert len(compiled.routes) == len(document["routes"])


@pytest.mark.kafka
async def test_the_inline_catalog_block_streams_what_the_page_shows(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    block = re.search(r"```yaml\n(.*?)```", END_TO_END, re.S)
    shown = re.search(r"```\n(data:.*?)\n```", END_TO_END, re.S)
    assert block is not None
    assert shown is not None
    document = yaml.safe_load(block.group(1))
    create_topic(kafka.bootstrap, "trades", 1, exist_ok=True)
    schema = fastavro.parse_schema(
        yaml.safe_load(document["catalogs"]["local"]["subjects"]["trades-value"]["schema"])
    )

    def avro(trade: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, trade)
        return out.getvalue()

    trade = {"id": 1, "symbol": "ACME", "side": "BUY", "amount": Decimal("1234.50"),
             "at": 1796212800000, "note": None}  # fmt: skip
    other = {**trade, "id": 2, "symbol": "OTHER"}
    kafka.produce("trades", [Record(avro(other)), Record(avro(trade))])
    gateway = gateways(document["routes"], catalogs=document["catalogs"])
    stream = await open_stream(gateway.port, "/trades/ACME")
    (event,) = await stream.next_events(1)
    await stream.close()
    assert f"data:{event.data}" == shown.group(1)
