"""`python -m benchmarks.run`: run the scenarios and write the results JSON.

    python -m benchmarks.run                       # every scenario, full size (make bench)
    python -m benchmarks.run --quick               # every scenario, small (make bench-quick)
    python -m benchmarks.run --scenario fanout     # one (repeatable); others kept in --out
    python -m benchmarks.run --targets ssegate     # only some targets

It starts its own Kafka broker (ssegate's devkafka, in a temporary home) unless
`KAFKA_BOOTSTRAP` is set, installs what the peers need (see install.py), and writes the
results after every scenario, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import system
from benchmarks.scenarios import (
    catch_up,
    fanout,
    filtered,
    idle,
    overload,
    resume_storm,
    schemas,
    tls_http2,
    workers,
)
from benchmarks.scenarios.common import FULL, QUICK, RunContext
from benchmarks.targets.base import Context, Target
from benchmarks.targets.nchan import Nchan
from benchmarks.targets.python_stack import PythonStack
from benchmarks.targets.ssegate import Ssegate

logger = logging.getLogger("benchmarks")

SCENARIOS: dict[str, Callable[[RunContext], dict[str, Any]]] = {
    "idle": idle.run,
    "fanout": fanout.run,
    "filtered": filtered.run,
    "resume-storm": resume_storm.run,
    "catch-up": catch_up.run,
    "workers": workers.run,
    "overload": overload.run,
    "tls-http2": tls_http2.run,
    "schemas": schemas.run,
}
TARGETS = ("ssegate", "python_stack", "nchan")
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated subset of {TARGETS}"
    )
    parser.add_argument("--out", type=Path, default=None, help="results JSON to write")
    return parser.parse_args(argv)


def make_targets(context: Context, names: list[str]) -> dict[str, Target]:
    factories: dict[str, Callable[[], Target]] = {
        "ssegate": lambda: Ssegate(context),
        "python_stack": lambda: PythonStack(context),
        "nchan": lambda: Nchan(context),
    }
    return {name: factories[name]() for name in TARGETS if name in names}


def source_state() -> dict[str, Any]:
    """The commit measured, and which files under src/ differed from it (others edit src/)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.rstrip("\n")  # not strip(): porcelain lines begin with a space

    modified = [line[3:] for line in git("status", "--porcelain", "src").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_modified": modified}


def load_previous(path: Path, profile: str) -> dict[str, Any]:
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return previous if previous.get("profile") == profile else {}


def write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    temporary.replace(path)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: servers, clients and the broker are stopped


def main(argv: list[str] | None = None) -> int:
    # A background job may inherit SIGINT ignored; both signals end the run cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s")
    sizes = QUICK if args.quick else FULL
    out: Path = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    names = [name.strip() for name in args.targets.split(",") if name.strip()]
    chosen = args.scenario or list(SCENARIOS)
    results = load_previous(out, sizes.name) if args.scenario else {}
    results.setdefault("scenarios", {})
    results["profile"] = sizes.name
    results["machine"] = system.machine()
    results["fd_limit"] = system.raise_own_fd_limit()
    results["source"] = source_state()
    results["updated"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    results.setdefault("durations_s", {})
    command = "python -m benchmarks.run" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    results["command"] = command
    run_dir = Path(tempfile.mkdtemp(prefix="ssegate-bench-"))
    started = time.monotonic()
    broker = None
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
        broker_pid = None
        if not bootstrap:
            from ssegate.devkafka import DevKafka

            logger.info("starting a Kafka broker")
            broker = DevKafka(run_dir / "kafka", progress=lambda m: logger.info("kafka: %s", m))
            info = broker.start()
            bootstrap, broker_pid = info.bootstrap, info.pid
        context = Context(bootstrap, run_dir, broker_pid)
        targets = make_targets(context, names)
        run = RunContext(
            sizes,
            context,
            targets,
            fd_limit=int(results["fd_limit"]["now"]),
            results_dir=out.parent,
        )
        for name, target in targets.items():
            logger.info("checking %s", name)
            reason = target.available()
            if reason:
                logger.error("%s cannot run: %s", name, reason)
                run.unavailable[name] = reason
        results["unavailable"] = dict(run.unavailable)
        for scenario in chosen:
            logger.info("scenario %s (%s)", scenario, sizes.name)
            scenario_started = time.monotonic()
            results["scenarios"][scenario] = SCENARIOS[scenario](run)
            results["durations_s"][scenario] = round(time.monotonic() - scenario_started, 1)
            write(out, results)
        results["durations_s"]["total" if not args.scenario else "last_run"] = round(
            time.monotonic() - started, 1
        )
        write(out, results)
        logger.info("results in %s (%.0f s)", out, time.monotonic() - started)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
