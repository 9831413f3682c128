"""The ack path before and after a change, in one run: `python -m benchmarks.compare --before main`.

The shared machine's load moves the figures of separate runs by more than a change costs, so this runs
Bolt's floor, the bot at `--before` (a git ref, exported to a temporary folder) and the bot of this
checkout in turns, several rounds, against the same simulators (Twilio answering in 200 ms), and
reports the median of each, and each median against the floor's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.runner import (
    FAST_TWILIO,
    ROOT,
    TARGET_CONCURRENCY,
    Options,
    ack_only,
    bot_run,
    running_bench,
)

CONCURRENCIES = (50, 200)
# Bolt's floor; the bot at --before and of this checkout; this checkout's with WORKER_PROCESS=1 and a
# `python -m bot work` process off the server CPU (the web process alone is measured against the floor).
WHATS = ("floor", "before", "after", "worker")


def export(ref: str, into: Path) -> Path:
    """The tree of git `ref` of this checkout, written to `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


async def compare(before: Path, requests: int, rounds: int) -> list[dict[str, Any]]:
    """Rows of (round, what, concurrency, acks/s, p99 ms); the three bots take turns first, round by round."""
    options = Options(requests, 0, "wrk", Path("unused.json"), pin=True, quick=False)
    rows: list[dict[str, Any]] = []
    async with running_bench(options, prefix="compare-") as bench:
        await bench.twilio_latency(FAST_TWILIO)
        for r in range(rounds):
            floor = await bench.start_server("floor")
            await ack_only(bench, floor.info["url"], f"warmfloor{r}", 100, 10)
            for c in CONCURRENCIES:
                got = await ack_only(bench, floor.info["url"], f"floor{r}c{c}", requests, c)
                rows.append(_row(r, "floor", c, got))
            await bench.stop(floor)
            bots = [("before", before, False), ("after", ROOT, False), ("worker", ROOT, True)]
            for name, root, worker in bots[r % 3 :] + bots[: r % 3]:
                bot = await bench.start_bot(f"{name}{r}", TARGET_CONCURRENCY, root=root, worker=worker)
                await bot_run(bench, bot, f"warm{name}{r}", 100, 10)
                for c in CONCURRENCIES:
                    got = await bot_run(bench, bot, f"{name}{r}c{c}", requests, c)
                    rows.append(_row(r, name, c, got))
                await bench.stop(bot)
    return rows


def _row(r: int, what: str, c: int, got: dict[str, Any]) -> dict[str, Any]:
    ack = got["ack"]
    correct = got.get("correct", {}).get("ok", True)
    return {
        "round": r,
        "what": what,
        "c": c,
        "acks_per_s": ack["requests_per_second"],
        "p99_ms": ack["latency_ms"]["p99"],
        "correct": correct,
        "other_cpu": got["other_cpu"],
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (what, concurrency), and the bots' medians over the floor's."""
    out: dict[str, Any] = {}
    for c in CONCURRENCIES:
        med = {
            what: {
                key: statistics.median(r[key] for r in rows if r["what"] == what and r["c"] == c)
                for key in ("acks_per_s", "p99_ms")
            }
            for what in WHATS
        }
        for what in WHATS[1:]:
            med[what]["throughput_vs_floor"] = round(med[what]["acks_per_s"] / med["floor"]["acks_per_s"], 2)
            med[what]["p99_vs_floor"] = round(med[what]["p99_ms"] / med["floor"]["p99_ms"], 2)
        out[f"c{c}"] = med
    out["correct"] = all(r["correct"] for r in rows)
    return out


def main(argv: list[str]) -> int:
    """Run the comparison, print the medians, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("--before", default="main", help="git ref of the code to compare with (main)")
    parser.add_argument("--requests", type=int, default=1000, help="commands per run (1000)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of floor, before, after, worker (4)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="before-") as folder:
        rows = asyncio.run(compare(export(args.before, Path(folder)), args.requests, args.rounds))
    doc = {"before": args.before, "requests": args.requests, "rows": rows, "summary": summary(rows)}
    for c in CONCURRENCIES:
        for what, figures in doc["summary"][f"c{c}"].items():
            print(f"C={c:<4} {what:<7} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {args.out}")
    return 0 if doc["summary"]["correct"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
