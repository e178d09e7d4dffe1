"""`ssegate devkafka start | stop | status`: the command-line face of DevKafka."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssegate.devkafka.broker import DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT, DevKafka
from ssegate.errors import ConfigError

EXIT_NOT_RUNNING = 3  # as LSB init scripts' `status`


def add_parser(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "devkafka",
        help="run a local single-node Kafka broker for development and tests",
        description="Run a single-node Kafka broker (KRaft) on 127.0.0.1, fetched from "
        "Maven Central on first use and cached.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    home_help = "directory for this broker's state and logs (default: $SSEGATE_DEVKAFKA_HOME "
    home_help += "or ~/.local/state/ssegate/devkafka)"

    start = actions.add_parser("start", help="start the broker; print bootstrap=HOST:PORT last")
    start.add_argument("--port", type=int, help="client port (default: a free port)")
    start.add_argument(
        "--data", type=Path, help="keep the broker's data in DIR between runs (default: fresh)"
    )
    start.add_argument("--home", type=Path, help=home_help)
    start.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_START_TIMEOUT,
        help=f"seconds to wait for the broker (default {DEFAULT_START_TIMEOUT:.0f})",
    )
    start.add_argument(
        "--set",
        dest="properties",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a broker property (repeatable), e.g. --set log.retention.ms=60000",
    )
    start.set_defaults(handler=_start)

    stop = actions.add_parser("stop", help="stop the broker (TERM, then KILL after a timeout)")
    stop.add_argument("--home", type=Path, help=home_help)
    stop.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_STOP_TIMEOUT,
        help=f"seconds before SIGKILL (default {DEFAULT_STOP_TIMEOUT:.0f})",
    )
    stop.set_defaults(handler=_stop)

    status = actions.add_parser("status", help="say whether the broker runs, and where")
    status.add_argument("--home", type=Path, help=home_help)
    status.set_defaults(handler=_status)


def _progress(message: str) -> None:
    print(f"devkafka: {message}", file=sys.stderr, flush=True)


def _parse_properties(pairs: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        properties[key.strip()] = value
    return properties


def _start(args: argparse.Namespace) -> int:
    broker = DevKafka(args.home, progress=_progress)
    info = broker.start(
        port=args.port,
        data_dir=args.data,
        timeout=args.timeout,
        properties=_parse_properties(args.properties),
    )
    print(f"pid={info.pid} log={info.log_file} data={info.data_dir}")
    print(f"bootstrap={info.bootstrap}", flush=True)
    return 0


def _stop(args: argparse.Namespace) -> int:
    stopped = DevKafka(args.home, progress=_progress).stop(timeout=args.timeout)
    print("stopped" if stopped else "not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    info = DevKafka(args.home).status()
    if info is None:
        print("not running")
        return EXIT_NOT_RUNNING
    print(f"running pid={info.pid} log={info.log_file} data={info.data_dir}")
    print(f"bootstrap={info.bootstrap}")
    return 0
