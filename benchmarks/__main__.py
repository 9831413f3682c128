"""`python -m benchmarks [--quick] [--requests N] [--generator wrk|python] [--out FILE] [--no-pin]`
`python -m benchmarks --engine postgres --replicas 2 [--database-url URL] [--requests N]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from benchmarks.runner import MEMORY_SENDS, RESULTS, Options, main, main_engines


def parse(argv: list[str]) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Load, latency, loop-lag and memory benchmarks of the bot against the simulators.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with N=200 (under a minute)")
    parser.add_argument("--requests", type=int, help="commands per run (default 2000; 200 with --quick)")
    parser.add_argument(
        "--generator",
        choices=["wrk", "python"],
        default="wrk",
        help="load generator (default wrk; falls back to python when wrk is missing)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not give the server under load a CPU of its own"
    )
    parser.add_argument(
        "--engine",
        choices=["postgres"],
        help="compare SQLite (one process) with PostgreSQL (one process and --replicas) instead of the suite",
    )
    parser.add_argument("--replicas", type=int, default=2, help="bot processes on PostgreSQL (default 2)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL") or "postgresql:///test",
        help="PostgreSQL for --engine (default TEST_DATABASE_URL or postgresql:///test); a schema per run",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.replicas <= 8:
        parser.error("--replicas must be from 1 to 8")
    count = args.requests or (200 if args.quick else 2000)
    if count < 10:
        parser.error("--requests must be at least 10")
    return Options(
        requests=count,
        memory_sends=MEMORY_SENDS,
        generator=args.generator,
        out=args.out,
        pin=not args.no_pin,
        quick=args.quick,
        engine=args.engine,
        replicas=args.replicas,
        database_url=args.database_url,
    )


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    sys.exit(asyncio.run(main_engines(options) if options.engine else main(options)))
