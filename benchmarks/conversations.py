"""`python -m benchmarks.conversations`: texts in and replies out under Slack's per-channel rate limit.

The bot runs as `python -m bot serve` on a real SQLite file; the Twilio and Slack simulators run in
processes of their own (`benchmarks.servers`), Slack limited to `--post-rate` posts a second per channel.
Texts are Twilio webhooks signed here with twilio-python's RequestValidator (the same bytes Twilio
sends), from `--numbers` phones to one routed number; replies are Events API callbacks signed as Slack
signs them. Measured: the webhook's answer times, how long until the last text is in its thread, and
whether every text is shown exactly once, in order, in its phone's thread; then whether each reply
(each delivered twice, as Slack retries) made exactly one Twilio create.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator

from benchmarks.runner import Proc, child_env, free_port
from benchmarks.stats import summarize_ms
from bot.sandbox.slack import ADMIN_ID, TEAM_ID
from bot.sandbox.twilio import DEFAULT_FROM, SANDBOX_ACCOUNT_SID
from tests.sandbox_accounts import store_sandbox_account

CHANNEL = "C0BENCH000"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _phone(i: int) -> str:
    return f"+1555700{i:04d}"


async def _texts_in(
    session: aiohttp.ClientSession, public: str, token: str, texts: int, numbers: int, seconds: float
) -> tuple[list[float], list[int]]:
    """Send `texts` signed webhooks spread over `seconds`; (latency of each, status of each)."""
    url = f"{public}/twilio/inbound"
    validator = RequestValidator(token)
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(n: int) -> None:
        form = {
            "MessageSid": f"SM{n:032x}",
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": _phone(n % numbers),
            "To": DEFAULT_FROM,
            "Body": f"p{n % numbers}-{n // numbers:04d}",
            "NumMedia": "0",
        }
        headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
        started = time.perf_counter()
        async with session.post(url, data=form, headers=headers) as resp:
            await resp.read()
            statuses.append(resp.status)
        latencies.append(time.perf_counter() - started)

    tasks = []
    start = time.perf_counter()
    for n in range(texts):
        # Paced, not all at once: texts arrive over `seconds`, in order within each phone.
        delay = start + n * seconds / texts - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return latencies, statuses


async def _threads(session: aiohttp.ClientSession, control: str) -> list[list[Any]]:
    async with session.get(f"{control}/bench/messages", params={"channel": CHANNEL}) as resp:
        data: list[list[Any]] = await resp.json()
    return data


def _check_threads(messages: list[list[Any]], texts: int, numbers: int) -> tuple[bool, dict[str, Any]]:
    """Every text exactly once, in order, in its own phone's one thread."""
    roots = {ts: text for ts, thread_ts, text in messages if not thread_ts or thread_ts == ts}
    by_thread: dict[str, list[str]] = {}
    for ts, thread_ts, text in messages:
        if thread_ts and thread_ts != ts:
            by_thread.setdefault(thread_ts, []).append(text)
    problems: list[str] = []
    seen = 0
    for root_ts, root_text in roots.items():
        phone = next((i for i in range(numbers) if _phone(i) in root_text), None)
        if phone is None:
            problems.append(f"a root card names no phone: {root_text[:80]}")
            continue
        bodies = [t for t in by_thread.get(root_ts, []) if f"p{phone}-" in t]
        expected = [f"p{phone}-{k:04d}" for k in range(len(range(phone, texts, numbers)))]
        got = [next((e for e in expected if e in t), "?") for t in bodies]
        seen += len(got)
        if got != expected:
            problems.append(f"thread of {_phone(phone)}: {len(got)} texts, in order: {got == sorted(got)}")
    ok = not problems and seen == texts and len(roots) == numbers
    return ok, {"threads": len(roots), "texts_shown": seen, "problems": problems[:5]}


def _event(secret: str, channel: str, thread_ts: str, n: int) -> tuple[bytes, dict[str, str]]:
    payload = {
        "token": "bench",
        "team_id": TEAM_ID,
        "api_app_id": "A0PLAYGRND",
        "type": "event_callback",
        "event_id": f"EvBENCH{n:08d}",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel": channel,
            "user": ADMIN_ID,
            "text": f"reply bench-r-{n:06d}",
            "ts": f"1900000000.{n:06d}",
            "thread_ts": thread_ts,
            "channel_type": "channel",
        },
    }
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }
    return body, headers


async def _replies(
    session: aiohttp.ClientSession, bot: str, secret: str, roots: list[str], count: int, per_second: float
) -> list[float]:
    """`count` replies across the threads at `per_second`, each delivered twice (Slack's retry)."""
    latencies: list[float] = []

    async def one(n: int) -> None:
        body, headers = _event(secret, CHANNEL, roots[n % len(roots)], n)
        for attempt in (0, 1):
            sent = dict(headers)
            if attempt:
                sent.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
            started = time.perf_counter()
            async with session.post(f"{bot}/slack/events", data=body, headers=sent) as resp:
                await resp.read()
            latencies.append(time.perf_counter() - started)

    tasks = []
    start = time.perf_counter()
    for n in range(count):
        delay = start + n / per_second - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return latencies


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run both phases, return the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    token, secret = secrets.token_hex(16), secrets.token_hex(16)
    bot_token, key = "xoxb-bench-" + secrets.token_hex(8), Fernet.generate_key().decode()
    base = {"BENCH_TWILIO_TOKEN": token, "BENCH_SIGNING_SECRET": secret, "BENCH_BOT_TOKEN": bot_token}
    procs: list[Proc] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        try:
            servers = [sys.executable, "-m", "benchmarks.servers"]
            twilio = await Proc.start("twilio", [*servers, "twilio"], child_env(**base), workdir, None)
            procs.append(twilio)
            slack_env = child_env(
                **base, BENCH_CHANNELS="1", BENCH_POST_RATE=str(args.post_rate), BENCH_POST_BURST="3"
            )
            slack = await Proc.start("slack", [*servers, "slack"], slack_env, workdir, None)
            procs.append(slack)
            db_path = workdir / "bot.db"
            await store_sandbox_account(db_path, secret_key=key, token=token, route_to=CHANNEL)
            port = free_port()
            public = f"http://127.0.0.1:{port}"
            bot_env = child_env(
                SLACK_SIGNING_SECRET=secret,
                SLACK_BOT_TOKEN=bot_token,
                SLACK_API_URL=slack.info["api_url"],
                TWILIO_API_URL=twilio.info["url"],
                DATABASE_PATH=str(db_path),
                SECRET_KEY=key,
                HOST="127.0.0.1",
                PORT=str(port),
                PUBLIC_URL=public,
                LOG_LEVEL="WARNING",
            )
            bot_argv = [sys.executable, "-m", "bot", "serve"]
            bot = await Proc.start("bot", bot_argv, bot_env, workdir, None, info={"url": public})
            procs.append(bot)
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(f"{public}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the bot did not start")
                await asyncio.sleep(0.1)

            _say(f"{args.texts} texts over {args.seconds:g} s from {args.numbers} phones …")
            started = time.perf_counter()
            latencies, statuses = await _texts_in(
                session, public, token, args.texts, args.numbers, args.seconds
            )
            sent_at = time.perf_counter()
            while True:
                messages = await _threads(session, slack.info["control"])
                shown = sum(1 for ts, thread_ts, _ in messages if thread_ts and thread_ts != ts)
                if shown >= args.texts or time.perf_counter() - sent_at > args.drain_timeout:
                    break
                await asyncio.sleep(1.0)
            last_in_thread = time.perf_counter() - started
            ok, detail = _check_threads(messages, args.texts, args.numbers)
            async with session.get(f"{slack.info['control']}/bench/rate-limited") as resp:
                limited = (await resp.json())["rate_limited"]
            roots = [ts for ts, thread_ts, _ in messages if not thread_ts or thread_ts == ts]

            _say(f"{args.replies} replies at {args.reply_rate:g}/s, each delivered twice …")
            reply_lat = await _replies(session, public, secret, roots, args.replies, args.reply_rate)
            deadline = time.monotonic() + 120
            while True:
                async with session.get(f"{twilio.info['control']}/bench/creates") as resp:
                    creates = await resp.json()
                tokens = [tok for tok, status in creates if tok.startswith("bench-r-") and status == 201]
                if len(tokens) >= args.replies or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            once = len(tokens) == args.replies and len(set(tokens)) == args.replies
        finally:
            for proc in reversed(procs):
                await proc.stop()
    return {
        "texts": args.texts,
        "numbers": args.numbers,
        "post_rate": args.post_rate,
        "webhook_ms": summarize_ms(latencies),
        "webhook_non_200": sum(1 for s in statuses if s != 200),
        "seconds_until_last_text_in_thread": round(last_in_thread, 1),
        "slack_429s": limited,
        "every_text_once_in_order": ok,
        "threads": detail,
        "replies": args.replies,
        "reply_ack_ms": summarize_ms(reply_lat),
        "creates_for_replies": len(tokens),
        "every_reply_one_create": once,
    }


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.conversations", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="spread the texts over this long")
    parser.add_argument("--post-rate", type=float, default=1.0, help="Slack posts a second per channel")
    parser.add_argument("--drain-timeout", type=float, default=3600.0)
    parser.add_argument("--replies", type=int, default=1500)
    parser.add_argument("--reply-rate", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/conversations.json"))
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args))
    text = json.dumps(figures, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if figures["every_text_once_in_order"] and figures["every_reply_one_create"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
