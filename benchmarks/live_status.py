"""`python -m benchmarks.live_status [--sends N] [--rate R]`: status callbacks under load.

The bot runs as `python -m bot serve` with PUBLIC_URL set (live status on), the Slack and Twilio
simulators in their own processes (the Twilio one holding its own callbacks back). N sends go through
Slack as usual; then 4·N status callbacks, signed as Twilio signs them, are POSTed to /twilio/status at
R a second: for each message queued, sent and delivered, plus one duplicate or out-of-order report
(a second delivered, a late sent, or a queued after sent), each message's four back to back.
Measured: the webhook's latency, how many chat.update calls were made and how close together for one
card, whether every card ends delivered, and the bot's event-loop lag while the callbacks arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks.load import run_python
from benchmarks.payloads import SignedRequest
from benchmarks.runner import ROOT, Bench, Options, Proc, health, running_bench, say
from bot.sandbox.twilio import SANDBOX_ACCOUNT_SID
from bot.twilio.signature import compute_signature

RESULTS = ROOT / "benchmarks" / "results" / "live_status.json"
INTERVAL = 2.0  # the bot's default: at most one update per card every 2 s
# For message i, the reports in the order they are sent: its fourth is a duplicate or out of order.
SEQUENCES = (
    ("queued", "sent", "delivered", "delivered"),
    ("queued", "sent", "delivered", "sent"),
    ("queued", "sent", "queued", "delivered"),
)


def callback_plan(sids: Sequence[str], *, bursts: bool = True) -> list[tuple[str, str]]:
    """(sid, status) for every callback, in sending order.

    `bursts`: each message's four reports back to back (the hardest case for coalescing: they land
    within milliseconds); otherwise in waves, the k-th wave carrying every message's k-th report.
    """
    if bursts:
        return [(sid, status) for i, sid in enumerate(sids) for status in SEQUENCES[i % len(SEQUENCES)]]
    return [
        (sid, SEQUENCES[i % len(SEQUENCES)][wave])
        for wave in range(len(SEQUENCES[0]))
        for i, sid in enumerate(sids)
    ]


def signed_callback(
    index: int, sid: str, status: str, *, token: str, url: str, account_sid: str = SANDBOX_ACCOUNT_SID
) -> SignedRequest:
    """One status callback as Twilio POSTs it to `url`, signed with the account's auth token."""
    form = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
    }
    headers = (
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "TwilioProxy/1.1"),
        ("X-Twilio-Signature", compute_signature(token, url, form)),
    )
    return SignedRequest(index, sid, urlencode(form).encode(), headers)


def check_updates(
    updates: Sequence[Sequence[Any]], messages: Sequence[Sequence[Any]], tokens: Mapping[str, str]
) -> dict[str, Any]:
    """Per card: how many chat.update calls, the least gap between two of them, and its final status."""
    times: dict[str, list[float]] = {}
    for ts, at, ok in updates:
        if ok:
            times.setdefault(str(ts), []).append(float(at))
    gaps = [b - a for stamps in times.values() for a, b in itertools.pairwise(stamps)]
    final = {tok: str(text) for ts, toks, text in messages for tok in toks if tok in tokens}
    not_final = sum(1 for tok in tokens if ": delivered (" not in final.get(tok, ""))
    return {
        "chat_update_calls": len(updates),
        "chat_update_ok": sum(len(v) for v in times.values()),
        "cards_updated": len(times),
        "max_updates_per_card": max((len(v) for v in times.values()), default=0),
        "min_gap_s": round(min(gaps), 3) if gaps else None,
        "cards_not_final": not_final,
    }


async def _idle(bench: Bench, bot: Proc, seconds: float = 60.0) -> None:
    """Until the bot has no background work left (or `seconds` have passed)."""
    give_up = time.monotonic() + seconds
    while True:
        busy = int((await health(bench, bot))["in_flight"])
        if not busy or time.monotonic() > give_up:
            return
        await asyncio.sleep(0.1)


async def run(sends: int, rate: float, *, bursts: bool = True) -> dict[str, Any]:
    """The whole benchmark; returns the results document."""
    options = Options(requests=sends, generator="python")
    async with running_bench(options, prefix="bench-live-", hold_callbacks=True) as bench:
        bot = await bench.start_bot("live", 100, live_status=True)
        say(f"live status: {sends} sends")
        sent = await bench.load(bot.info["url"], "live", sends, 50)
        await _idle(bench, bot)
        pairs = await bench.get_json(f"{bench.twilio_info['control']}/bench/sids")
        tokens = {str(tok): str(sid) for tok, sid in pairs}
        sids = sorted(set(tokens.values()))
        url = f"{bot.info['url']}/twilio/status"
        plan = callback_plan(sids, bursts=bursts)
        calls = [
            signed_callback(i, sid, status, token=bench.secrets.twilio_token, url=url)
            for i, (sid, status) in enumerate(plan)
        ]
        say(f"live status: {len(calls)} callbacks at {rate:g}/s")
        samples = int((await health(bench, bot))["loop_lag"]["samples"])
        load = await run_python(url, calls, 50, rate=rate)
        # Wait until the bot is idle: every card redrawn (coalescing holds some for up to 2 s).
        await _idle(bench, bot)
        lag = (await health(bench, bot, after=samples))["loop_lag"]
        seen = await bench.get_json(f"{bench.slack_info['control']}/bench/updates")
        cards = check_updates(seen["updates"], seen["messages"], tokens)
    doc: dict[str, Any] = {
        "sends": sends,
        "order": "bursts" if bursts else "waves",
        "sends_acked": sent.ok,
        "sends_tracked": len(sids),
        "callbacks": load.to_json(),
        "callbacks_204": load.statuses.get(204, 0),
        "cards": cards,
        "loop_lag": lag,
        "ok": bool(
            sent.ok == sends
            and len(sids) == sends
            and load.statuses.get(204, 0) == len(calls)
            and cards["cards_not_final"] == 0
            and (cards["min_gap_s"] is None or cards["min_gap_s"] >= INTERVAL - 0.05)
        ),
    }
    return doc


def main(argv: list[str]) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live_status", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sends", type=int, default=1000, help="messages sent (default 1000)")
    parser.add_argument("--rate", type=float, default=200.0, help="callbacks a second (default 200)")
    parser.add_argument(
        "--waves", action="store_true", help="send the reports in waves instead of per-message bursts"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    doc = asyncio.run(run(args.sends, args.rate, bursts=not args.waves))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    lat = doc["callbacks"]["latency_ms"]
    cards = doc["cards"]
    print(
        f"webhook p50/p99/max {lat['p50']}/{lat['p99']}/{lat['max']} ms, "
        f"{doc['callbacks_204']}/{doc['callbacks']['requests']} answered 204\n"
        f"chat.update: {cards['chat_update_calls']} calls for {cards['cards_updated']} cards, at most "
        f"{cards['max_updates_per_card']} per card, closest two {cards['min_gap_s']} s apart; "
        f"cards not final: {cards['cards_not_final']}\n"
        f"loop lag p99 {doc['loop_lag']['p99_ms']} ms; correct: {doc['ok']}"
    )
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
