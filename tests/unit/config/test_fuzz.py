"""Arbitrary and YAML-ish input through wiring.parse: a CompiledConfig or a ConfigError."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssegate.errors import ConfigError
from ssegate.wiring import CompiledConfig, parse

# The default keeps this file under 10 s; SSEGATE_FUZZ_SCALE=100 runs much longer.
SCALE = float(os.environ.get("SSEGATE_FUZZ_SCALE", "1"))
BASE_DIR = Path(__file__).parent  # holds this file and __init__.py, nothing served


def _examples(n: int) -> settings:
    return settings(
        max_examples=int(n * SCALE),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _check(text: str) -> None:
    try:
        compiled = parse(text, source="fuzz.yaml", base_dir=BASE_DIR, environ={"A": "1"})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yaml: ")
        assert "\n" not in message
    else:
        assert isinstance(compiled, CompiledConfig)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "x",
            "events",
            "/",
            "/events/{symbol}/{exchange}",
            "/{topic}",
            "/health",
            "${params.symbol}",
            "${params.topic}",
            "${params.nope}",
            "${env.A}",
            "${env.B}",
            "${env.B:-7}",
            "$${env.A}",
            "${guard.identity}",
            "${",
            "15s",
            "500ms",
            "1MiB",
            "64KiB",
            "7114",
            "earliest",
            "latest",
            "key",
            "etag",
            "*",
            "https://a.example",
            "index.html",
            "test_fuzz.py",
            "127.0.0.1",
            "x" * 300,
            "a\x00b",
            "-1",
            "same-origin",
            "cross-origin",
        ]
    ),
    st.text(max_size=12),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "kafka",
            "routes",
            "listeners",
            "sse",
            "cors",
            "limits",
            "static",
            "bootstrap_servers",
            "properties",
            "ring",
            "max_records",
            "max_bytes",
            "metadata_refresh",
            "max_catchup_readers",
            "path",
            "topic",
            "filters",
            "key",
            "headers",
            "event_id",
            "start",
            "host",
            "port",
            "backlog",
            "heartbeat",
            "initial_comment",
            "retry",
            "policy",
            "allow",
            "origins",
            "methods",
            "credentials",
            "max_age",
            "expose_headers",
            "max_streams",
            "max_header_bytes",
            "/",
            "/page",
        ]
    ),
    st.text(max_size=6),
)
DOCUMENTS: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=25,
)


def _valid_ish() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly-valid documents with one or two fields replaced by anything."""
    route = st.fixed_dictionaries(
        {
            "path": st.sampled_from(["/events/{symbol}/{exchange}", "/{topic}", "/a"]),
            "topic": st.sampled_from(["events", "${params.topic}", "${params.symbol}", "a b"]),
        },
        optional={
            "filters": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "key": SCALARS,
                        "headers": st.dictionaries(st.sampled_from(["exchange", "x"]), SCALARS),
                    },
                ),
                max_size=3,
            ),
            "start": SCALARS,
            "event_id": SCALARS,
        },
    )
    return st.fixed_dictionaries(
        {
            "kafka": st.fixed_dictionaries(
                {"bootstrap_servers": st.one_of(st.just("${env.A}"), SCALARS)},
                optional={"ring": DOCUMENTS, "metadata_refresh": SCALARS},
            ),
            "routes": st.lists(route, max_size=3),
        },
        optional={
            "listeners": st.lists(
                st.fixed_dictionaries({}, optional={"host": SCALARS, "port": SCALARS}), max_size=3
            ),
            "sse": st.fixed_dictionaries({}, optional={"heartbeat": SCALARS, "retry": SCALARS}),
            "cors": DOCUMENTS,
            "limits": st.dictionaries(
                st.sampled_from(["max_streams", "max_header_bytes", "request_timeout"]), SCALARS
            ),
            "static": st.dictionaries(SCALARS, SCALARS, max_size=2),
        },
    )


@_examples(300)
@given(document=DOCUMENTS)
def test_random_documents(document: Any) -> None:
    _check(yaml.safe_dump(document, allow_unicode=True))


@_examples(300)
@given(document=_valid_ish())
def test_mostly_valid_documents(document: dict[str, Any]) -> None:
    _check(yaml.safe_dump(document, allow_unicode=True))


YAML_TEXT = st.text(
    alphabet=st.sampled_from(list("kafka:routes-[]{}&*!|>'\"#?, \n\t$.%/0123\x00é")), max_size=60
)


@_examples(400)
@given(text=st.one_of(st.text(max_size=60), YAML_TEXT))
def test_random_text(text: str) -> None:
    _check(text)
