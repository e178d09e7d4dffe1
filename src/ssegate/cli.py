"""The `ssegate` command: a thin layer that parses arguments and calls the packages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from ssegate import __version__
from ssegate.devkafka import command as devkafka_command
from ssegate.errors import SsegateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssegate",
        description="Stream Apache Kafka topics to HTTP clients as Server-Sent Events.",
    )
    parser.add_argument("--version", action="version", version=f"ssegate {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devkafka_command.add_parser(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except SsegateError as exc:
        print(f"ssegate: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
