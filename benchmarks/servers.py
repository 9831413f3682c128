"""The benchmark's helper processes: `python -m benchmarks.servers twilio|slack|floor|bare`.

Each prints one JSON line with its URLs on stdout, then serves until SIGTERM/SIGINT:

* `twilio`: the Twilio simulator with the sandbox account (auth token from BENCH_TWILIO_TOKEN); its
  `/_sim/` routes set the answer delay. A control app adds `GET/DELETE /bench/creates`.
* `slack`: the Slack simulator (BENCH_SIGNING_SECRET, BENCH_BOT_TOKEN) with BENCH_CHANNELS public channels
  added (`benchmarks.payloads.channel_ids`), and a control app: `GET/DELETE /bench/cards` gives when each
  card (chat.postMessage or response_url post) arrived.
* `floor`: a minimal Bolt AsyncApp whose `/twilio` listener only acks: the framework's floor, served by
  aiohttp the way the bot serves Bolt (to_bolt_request / async_dispatch), its client on the Slack simulator.
* `bare`: an aiohttp handler that answers 200 at once: the load generator's (and aiohttp's) ceiling.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from benchmarks.payloads import channel_ids, tokens_in

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(app: web.Application, host: str = "127.0.0.1") -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    return runner, f"http://{host}:{runner.addresses[0][1]}"


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def _announce(**urls: str) -> None:
    print(json.dumps(urls), flush=True)


async def _serve_beside(
    sim: Any,
    path: str,
    found: Handler,
    clear: Handler,
    *,
    extra: dict[str, Handler] | None = None,
    **urls: str,
) -> None:
    """Serve `path` (GET: what was found, DELETE: clear it) and the `extra` GET routes beside the simulator
    `sim` until a signal, announcing `urls` and the control URL; then stop both."""
    control = web.Application()
    for extra_path, handler in (extra or {}).items():
        control.router.add_get(extra_path, handler)
    control.router.add_get(path, found)
    control.router.add_delete(path, clear)
    runner, control_url = await _serve(control)
    _announce(**urls, control=control_url)
    try:
        await _until_signal()
    finally:
        await runner.cleanup()
        await sim.stop()


async def run_twilio() -> None:
    """The Twilio simulator plus `/bench/creates`: [token, HTTP status] for every message create."""
    from bot.sandbox.twilio import SimClock, TwilioSimulator

    sim = TwilioSimulator(SimClock(follow_real_time=True))
    sim.add_sandbox_account(os.environ["BENCH_TWILIO_TOKEN"])
    hold = getattr(sim, "hold_callbacks", None)
    if os.environ.get("BENCH_HOLD_CALLBACKS") == "1" and callable(hold):
        hold()  # the live-status benchmark sends its own callbacks, at its own pace
    url = await sim.start()

    async def creates(request: web.Request) -> web.Response:
        found: list[list[Any]] = []
        for rec in sim.requests:
            if rec.method == "POST" and rec.path.endswith("/Messages.json"):
                body = next((v for k, v in rec.form if k == "Body"), "")
                found.extend([tok, rec.status] for tok in tokens_in(body))
        return web.json_response(found)

    async def sids(request: web.Request) -> web.Response:
        found: list[list[Any]] = []
        for rec in sim.requests:
            if rec.method == "POST" and rec.path.endswith("/Messages.json") and rec.message_sid:
                body = next((v for k, v in rec.form if k == "Body"), "")
                found.extend([tok, rec.message_sid] for tok in tokens_in(body))
        return web.json_response(found)

    async def clear(request: web.Request) -> web.Response:
        sim.requests.clear()
        sim.messages.clear()
        return web.json_response({"ok": True})

    await _serve_beside(sim, "/bench/creates", creates, clear, extra={"/bench/sids": sids}, url=url)


async def run_slack() -> None:
    """The Slack simulator plus `/bench/cards`: [token, arrival time, ok] for every card it received."""
    from bot.sandbox import slack

    sim = slack.SlackSimulator(
        signing_secret=os.environ["BENCH_SIGNING_SECRET"], bot_token=os.environ["BENCH_BOT_TOKEN"]
    )
    # The simulator has no public way to add channels; these two private names are what it keeps per
    # channel (its table of channels and each one's history).
    members = [slack.ADMIN_ID, slack.MEMBER_ID, slack.BOT_USER_ID]
    for i, cid in enumerate(channel_ids(int(os.environ.get("BENCH_CHANNELS", "0")))):
        sim.channels[cid] = slack._Channel(cid, f"bench-{i}", False, list(members))
        sim._messages[cid] = []
    if os.environ.get("BENCH_POST_RATE"):
        # Slack's ~1 post a second per channel (with short bursts), for the conversations benchmark.
        sim.enable_rate_limits(
            post_per_second=float(os.environ["BENCH_POST_RATE"]),
            post_burst=int(os.environ.get("BENCH_POST_BURST", "3")),
        )
    url = await sim.start()

    async def messages(request: web.Request) -> web.Response:
        """A channel's messages as [ts, thread_ts, text]: the threads the conversations benchmark checks."""
        stored = sim.messages(request.query["channel"])
        return web.json_response([[m.get("ts"), m.get("thread_ts"), m.get("text") or ""] for m in stored])

    async def limited(request: web.Request) -> web.Response:
        return web.json_response({"rate_limited": len(sim.rate_limited)})

    async def cards(request: web.Request) -> web.Response:
        found: list[list[Any]] = []
        for call in sim.calls:
            if call.method in {"chat.postMessage", "response_url"}:
                text = json.dumps(call.args, ensure_ascii=False)
                found.extend([tok, call.time, call.method, call.ok] for tok in dict.fromkeys(tokens_in(text)))
        return web.json_response(found)

    async def updates(request: web.Request) -> web.Response:
        """[ts, time, ok] for every chat.update; then [ts, tokens, text] of every bot message now."""
        calls = [[c.args.get("ts"), c.time, c.ok] for c in sim.calls if c.method == "chat.update"]
        now = [
            [m.get("ts"), tokens_in(json.dumps(m.get("blocks") or [])), m.get("text")]
            for stored in sim._messages.values()
            for m in stored
            if m.get("bot_id")
        ]
        return web.json_response({"updates": calls, "messages": now})

    async def clear(request: web.Request) -> web.Response:
        sim.calls.clear()
        for stored in sim._messages.values():  # the channels' history: only memory for a benchmark
            stored.clear()
        return web.json_response({"ok": True})

    await _serve_beside(
        sim,
        "/bench/cards",
        cards,
        clear,
        extra={"/bench/updates": updates, "/bench/messages": messages, "/bench/rate-limited": limited},
        url=url,
        api_url=sim.api_url,
    )


async def run_floor() -> None:
    """A Bolt app that only acks `/twilio`, served like the bot serves its Bolt app."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(token=os.environ["BENCH_BOT_TOKEN"], base_url=os.environ["BENCH_SLACK_API_URL"])
    bolt = AsyncApp(
        client=client,
        signing_secret=os.environ["BENCH_SIGNING_SECRET"],
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @bolt.command("/twilio")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    await _run_app({"/slack/events": events})


async def run_bare() -> None:
    """Answers every POST at once: what the load generator and aiohttp can do with no app at all."""

    async def events(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(text="")

    await _run_app({"/slack/events": events})


async def _run_app(routes: dict[str, Handler]) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1024 * 1024)
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    app.router.add_get("/healthz", healthz)
    runner, url = await _serve(app)
    _announce(url=url)
    try:
        await _until_signal()
    finally:
        await runner.cleanup()


KINDS: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
    "twilio": run_twilio,
    "slack": run_slack,
    "floor": run_floor,
    "bare": run_bare,
}


def main(argv: list[str]) -> int:
    """Run the named helper until a signal stops it."""
    if len(argv) != 1 or argv[0] not in KINDS:
        print(f"usage: python -m benchmarks.servers {{{'|'.join(KINDS)}}}", file=sys.stderr)
        return 2
    asyncio.run(KINDS[argv[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
