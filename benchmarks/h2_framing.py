"""What one event costs to frame on an HTTP/2 connection: h2's `send_data` against the
9-byte DATA head ssegate writes itself (`ssegate.http.h2frames`), both with h2's
flow-control windows kept. Run: `python -m benchmarks.h2_framing` (decision 0010).

Ten streams on one server connection, the same 70-byte event to each, the batch taken
out once per round as the gateway does (`data_to_send`, or one `b"".join`).
"""

from __future__ import annotations

import argparse
import json
import time

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes

from ssegate.http.h2frames import data_frame_head

EVENT = b'id:AQQAAgIC\ndata:{"symbol":"ACME","price":123.45,"ts":1700000000000}\n\n'
STREAMS = list(range(1, 21, 2))


def connected() -> H2Connection:
    """A server connection with ten open streams and windows too big to close."""
    server = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    client.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    client.increment_flow_control_window(2**31 - 1 - 65535)
    server.receive_data(client.data_to_send())
    request = [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "x")]
    for stream_id in STREAMS:
        client.send_headers(stream_id, request, end_stream=True)
    server.receive_data(client.data_to_send())
    for stream_id in STREAMS:
        server.send_headers(stream_id, [(":status", "200")])
    server.data_to_send()
    return server


def with_h2(rounds: int) -> float:
    server = connected()
    started = time.perf_counter()
    for _ in range(rounds):
        for stream_id in STREAMS:
            server.send_data(stream_id, EVENT)
        server.data_to_send()
    return (time.perf_counter() - started) / (rounds * len(STREAMS))


def with_own_heads(rounds: int) -> float:
    server = connected()
    size = len(EVENT)
    out: list[bytes] = []
    started = time.perf_counter()
    for _ in range(rounds):
        for stream_id in STREAMS:
            stream = server.streams[stream_id]
            stream.outbound_flow_control_window -= size
            server.outbound_flow_control_window -= size
            out.append(data_frame_head(stream_id, size))
            out.append(EVENT)
        b"".join(out)
        out.clear()
    return (time.perf_counter() - started) / (rounds * len(STREAMS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs")
    args = parser.parse_args(argv)
    h2_us = min(with_h2(args.rounds) for _ in range(args.repeat)) * 1e6
    own_us = min(with_own_heads(args.rounds) for _ in range(args.repeat)) * 1e6
    print(json.dumps({"h2_send_data_us": round(h2_us, 2), "own_data_head_us": round(own_us, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
