"""The simulator alone in its own process: ``python -m bot.sandbox.twilio``."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

from bot.sandbox.twilio.accounts import _ACCOUNT_SID, DEFAULT_FROM, SANDBOX_ACCOUNT, SERVICE_NUMBER
from bot.sandbox.twilio.clock import SimClock
from bot.sandbox.twilio.simulator import TwilioSimulator


async def _serve(host: str, port: int, account_sid: str, auth_token: str | None) -> None:
    sim = TwilioSimulator(SimClock(follow_real_time=True), host=host)
    token = sim.add_sandbox_account(auth_token, sid=account_sid)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    url = await sim.start(port)
    try:
        print(url, flush=True)
        print(f"TWILIO_ACCOUNT_SID={account_sid}", flush=True)
        if auth_token is None:  # a generated token is only knowable from here
            print(f"TWILIO_AUTH_TOKEN={token}", flush=True)
        print(f"FROM={DEFAULT_FROM} MESSAGING_SERVICE_SID={SANDBOX_ACCOUNT.service_sid}", flush=True)
        print(f"SERVICE_NUMBER={SERVICE_NUMBER} (texts to it go to the service's inbound URL)", flush=True)
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator alone until SIGTERM/SIGINT; the first stdout line is its URL."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.twilio", description="Serve a Twilio Messages API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: any free port)")
    parser.add_argument("--account-sid", default=SANDBOX_ACCOUNT.sid, help="the account to create")
    parser.add_argument("--auth-token", default=None, help="its auth token (default: random)")
    args = parser.parse_args(argv)
    if not _ACCOUNT_SID.fullmatch(args.account_sid):
        parser.error("--account-sid must be AC followed by 32 hex digits")
    asyncio.run(_serve(args.host, args.port, args.account_sid, args.auth_token))
    return 0
