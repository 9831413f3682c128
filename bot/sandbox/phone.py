"""A customer's phone for the playground: text one of our numbers, and see what the team answers.

A small page of its own (`PhonePanel(twilio).start()`) over the Twilio simulator in the same process:
"Send" is a text from the chosen phone number to our number (`receive_text`, delivered to that number's
SmsUrl, signed, as Twilio would), and the conversation shows what the phone sent and received
(`phone_messages`), refreshed every second.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.sandbox.twilio import TwilioSimulator

__all__ = ["DEFAULT_PHONE", "PhonePanel"]

DEFAULT_PHONE = "+15550001234"

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>Phone · Twilio Bridge playground</title>
<style>
body{font:15px system-ui,sans-serif;margin:0;background:#e9edf2;display:flex;justify-content:center}
.phone{width:360px;margin:24px;background:#fff;border-radius:28px;box-shadow:0 6px 24px #0003;
 display:flex;flex-direction:column;height:640px;overflow:hidden}
header{padding:14px 16px;background:#1f2a44;color:#fff}
header label{display:block;font-size:12px;opacity:.8;margin-top:6px}
header input,header select{width:100%;box-sizing:border-box;padding:4px;border-radius:6px;border:0}
#thread{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px}
.bubble{max-width:75%;padding:8px 12px;border-radius:16px;white-space:pre-wrap;word-wrap:break-word}
.sent{align-self:flex-end;background:#0b84ff;color:#fff}
.received{align-self:flex-start;background:#e5e5ea}
.meta{font-size:11px;opacity:.7}
form{display:flex;gap:6px;padding:10px;border-top:1px solid #ddd}
#body{flex:1;padding:8px;border-radius:16px;border:1px solid #ccc}
#error{color:#b00;font-size:12px;padding:0 12px}
</style></head><body><div class="phone">
<header><strong>📱 Customer's phone</strong>
<label for="mine">This phone's number</label><input id="mine" value="__PHONE__">
<label for="ours">Texting the company's number</label><select id="ours">__OURS__</select></header>
<div id="thread" aria-live="polite"></div><div id="error" role="alert"></div>
<form id="send"><input id="body" placeholder="Text message" autocomplete="off">
<button type="submit" id="send-button">Send</button></form></div>
<script>
const $ = (s) => document.querySelector(s);
async function refresh() {
  const r = await fetch("messages?number=" + encodeURIComponent($("#mine").value));
  if (!r.ok) return;
  const items = await r.json();
  const box = $("#thread");
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.replaceChildren(...items.map((m) => {
    const d = document.createElement("div");
    d.className = "bubble " + m.direction;
    d.dataset.sid = m.sid;
    d.textContent = m.body || "(no text)";
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = (m.direction === "sent" ? "to " + m.to : "from " + m.from)
      + (m.num_media ? " · " + m.num_media + " attachment(s)" : "");
    d.append(meta);
    return d;
  }));
  if (atEnd) box.scrollTop = box.scrollHeight;
}
$("#send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = $("#body").value;
  if (!body.trim()) return;
  const r = await fetch("send", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({from: $("#mine").value, to: $("#ours").value, body})});
  const answer = await r.json();
  $("#error").textContent = answer.ok ? "" : answer.error;
  if (answer.ok) $("#body").value = "";
  refresh();
});
$("#mine").addEventListener("change", refresh);
setInterval(refresh, 1000);
refresh();
</script></body></html>
"""


class PhonePanel:
    """The phone page and its two JSON routes, over a Twilio simulator running in this process."""

    def __init__(
        self, twilio: TwilioSimulator, our_numbers: list[str], *, phone: str = DEFAULT_PHONE
    ) -> None:
        self._twilio = twilio
        self._ours = our_numbers
        self._phone = phone
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the page; its base URL."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/messages", self._messages)
        app.router.add_post("/send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        return f"http://{host}:{bound}"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _page(self, request: web.Request) -> web.Response:
        options = "".join(f'<option value="{n}">{n}</option>' for n in self._ours)
        html = _PAGE.replace("__PHONE__", self._phone).replace("__OURS__", options)
        return web.Response(text=html, content_type="text/html")

    async def _messages(self, request: web.Request) -> web.Response:
        number = request.query.get("number", "")[:40]
        try:
            items = self._twilio.phone_messages(number, include_sent=True)
        except ValueError:
            items = []
        return web.json_response(items)

    async def _send(self, request: web.Request) -> web.Response:
        try:
            body: Any = json.loads(await request.text())
            text = await self._twilio.receive_text(
                str(body["from"]), str(body["to"]), str(body["body"])[:1600], wait=False
            )
        except (ValueError, KeyError, TypeError) as err:
            return web.json_response({"ok": False, "error": str(err)})
        return web.json_response({"ok": True, "sid": text.message_sid})
