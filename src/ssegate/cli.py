"""The `ssegate` command: a thin layer that parses arguments and calls the packages."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ssegate import __version__
from ssegate.devkafka import command as devkafka_command
from ssegate.errors import ConfigError, SsegateError
from ssegate.observe.logs import configure as configure_logging


def _run(args: argparse.Namespace) -> int:
    from ssegate.server import raise_fd_limit, run
    from ssegate.wiring import load

    compiled = load(args.config)
    raise_fd_limit()
    if args.worker:
        return run(compiled, reuse_port=True)
    workers = args.workers if args.workers is not None else compiled.config.server.workers
    if workers < 1:
        raise SsegateError(f"--workers {workers}: at least 1")
    if workers == 1:
        return run(compiled)
    from ssegate.supervisor import Supervisor

    return Supervisor(args.config, compiled, workers, args.log_level).run()


def _check(args: argparse.Namespace) -> int:
    from ssegate.wiring import load

    compiled = load(args.config)
    config = compiled.config
    now = datetime.datetime.now(datetime.UTC)
    warnings = []
    for index, tls in enumerate(compiled.tls):
        for notice in tls.validity(now) if tls is not None else ():
            where = f"listeners[{index}].tls: {notice.message}"
            if notice.unusable:  # clients refuse it: as wrong as a missing file
                raise ConfigError(f"{args.config}: {where}")
            warnings.append(where)
    listeners = ", ".join(
        f"{'https' if item.tls else 'http'}://{item.host}:{item.port}" for item in config.listeners
    )
    print(f"{args.config}: ok ({len(compiled.routes)} routes; listening on {listeners})")
    for route in compiled.routes:
        print(f"  {route.path} -> topic {route.topic.text}")
    for warning in warnings:
        print(f"  warning: {warning}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ssegate.demo import run_demo

    return run_demo(args.config, port=args.port, tls=args.tls)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssegate",
        description="Stream Apache Kafka topics to HTTP clients as Server-Sent Events.",
    )
    parser.add_argument("--version", action="version", version=f"ssegate {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default INFO)",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = subcommands.add_parser("run", help="serve the routes of a configuration file")
    run.add_argument("config", type=Path, help="the YAML configuration (see docs/configuration.md)")
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes sharing the ports (default: server.workers, 1)",
    )
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)

    check = subcommands.add_parser("check", help="validate a configuration file and exit")
    check.add_argument("config", type=Path)
    check.set_defaults(handler=_check)

    demo = subcommands.add_parser(
        "demo", help="local Kafka, a stock-price producer and the gateway, on port 7114"
    )
    demo.add_argument(
        "--config", type=Path, default=Path("examples/fanout/ssegate.yaml"), help="gateway config"
    )
    demo.add_argument("--port", type=int, default=None, help="Kafka port (default: a free one)")
    demo.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS, with a certificate from a local CA the demo makes (prints its file)",
    )
    demo.set_defaults(handler=_demo)

    devkafka_command.add_parser(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, args.log_level))
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except SsegateError as exc:
        print(f"ssegate: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
