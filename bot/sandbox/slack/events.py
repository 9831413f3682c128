"""The Events API: ``event_callback`` envelopes sent to the bot, signed, over HTTP or Socket Mode, retried.

What the simulated people do (`activity`), the bot's own posts, and uninstalls raise events here. An
event goes out only if the app subscribes to it (``settings.event_subscriptions.bot_events`` in the
manifest: ``message.channels``, ``message.groups``, ``app_home_opened``, ``app_uninstalled``,
``tokens_revoked``…, or the simulator's ``events=``), and a message event only from a channel the bot
is a member of; the rest land in `skipped_events`. `ALL_EVENTS` subscribes to every event it sends.

Like Slack, an event the bot does not acknowledge with a 200 within ``ack_timeout`` (3 s) is sent again,
up to 3 times, with ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason`` (``http_timeout``,
``http_error``, ``connection_failed``; over Socket Mode, ``retry_attempt``/``retry_reason`` in the
envelope) and the same ``event_id``. Slack waits about a minute, then five; the simulator waits
``event_retry_delays`` (none by default). `force_event_retry()` makes the next event be sent again even
though the bot answered, as Slack does when an answer is lost. Every attempt is a `Delivery` of kind
``event_callback``; `settle_events()` waits for all of them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from bot.sandbox.slack.records import Delivery, Json
from bot.sandbox.slack.socket_mode import SocketMode
from bot.sandbox.slack.workspace import API_APP_ID, VERIFICATION_TOKEN, Team, _Channel

ALL_EVENTS = frozenset(
    {"message.channels", "message.groups", "app_home_opened", "app_uninstalled", "tokens_revoked"}
)
RETRY_REASONS = frozenset(
    {"http_timeout", "http_error", "connection_failed", "too_many_redirects", "unknown_error"}
)
_HIDDEN_FIELDS = ("reply_count", "reply_users", "reply_users_count", "latest_reply", "reactions", "metadata")


class EventsApi(SocketMode):
    """Sends ``event_callback`` envelopes to the bot and keeps every attempt."""

    @property
    def event_deliveries(self) -> list[Delivery]:
        """Every attempt at sending an event, retries included, in order."""
        return [d for d in self.deliveries if d.kind == "event_callback"]

    def events_sent(self, event_type: str | None = None, *, subtype: str | None = None) -> list[Json]:
        """The envelopes sent (first attempts only), optionally of one event type and message subtype."""
        found = []
        for delivery in self.event_deliveries:
            if delivery.headers.get("X-Slack-Retry-Num"):
                continue
            event = delivery.payload.get("event") or {}
            if event_type in (None, event.get("type")) and subtype in (None, event.get("subtype")):
                found.append(delivery.payload)
        return found

    def force_event_retry(self, times: int = 1, reason: str = "http_timeout") -> None:
        """Send each of the next `times` events a second time even though the bot answered 200."""
        if reason not in RETRY_REASONS:
            raise ValueError(f"reason must be one of {sorted(RETRY_REASONS)}")
        self._forced_retries.extend([reason] * times)

    async def settle_events(self) -> None:
        """Wait until every event in flight (and its retries) is done."""
        while self._event_tasks:
            await asyncio.gather(*list(self._event_tasks), return_exceptions=True)

    # ----- raising events ------------------------------------------------------------------------

    def _subscribed(self, name: str) -> bool:
        return name in self.bot_events

    def _message_event(self, channel: _Channel, message: Json) -> Json:
        event = {k: v for k, v in message.items() if k not in _HIDDEN_FIELDS}
        event.setdefault("event_ts", message.get("ts"))
        event["channel"] = channel.id
        event["channel_type"] = "group" if channel.is_private else "channel"
        return event

    def _changed_event(self, channel: _Channel, message: Json, previous: Json) -> Json:
        visible = {k: v for k, v in message.items() if k not in _HIDDEN_FIELDS}
        return self._hidden_event(channel, "message_changed", previous, message=visible)

    def _deleted_event(self, channel: _Channel, message: Json) -> Json:
        return self._hidden_event(channel, "message_deleted", message, deleted_ts=message["ts"])

    def _hidden_event(self, channel: _Channel, subtype: str, previous: Json, **fields: Any) -> Json:
        """A hidden message event (an edit or a deletion) carrying the message as it was before."""
        ts = self._next_ts()
        return {
            "type": "message",
            "subtype": subtype,
            "hidden": True,
            "channel": channel.id,
            "channel_type": "group" if channel.is_private else "channel",
            "ts": ts,
            "event_ts": ts,
            **fields,
            "previous_message": {k: v for k, v in previous.items() if k not in _HIDDEN_FIELDS},
        }

    def _raise_channel_event(self, channel: _Channel, event: Json) -> asyncio.Task[list[Delivery]] | None:
        """Send a message event from `channel` if the bot is in it and the app subscribes."""
        name = "message.groups" if channel.is_private else "message.channels"
        if not channel.bot_member:
            self.skipped_events.append({"event": event, "why": "the bot is not a member of the channel"})
            return None
        return self._raise_event(self._team_of_channel(channel), event, subscription=name)

    def _raise_event(
        self, team: Team, event: Json, *, subscription: str | None = None
    ) -> asyncio.Task[list[Delivery]] | None:
        """Build the envelope once (one event_id for every retry) and send it in the background."""
        name = subscription or str(event.get("type"))
        if not self._subscribed(name):
            self.skipped_events.append({"event": event, "why": f"the app does not subscribe to {name}"})
            return None
        if not (self.socket_mode or self.bot_events_url) or self._session is None:
            self.skipped_events.append({"event": event, "why": "no bot to send it to (set_bot_url, start)"})
            return None
        envelope: Json = {
            "token": VERIFICATION_TOKEN,
            "team_id": team.id,
            "context_team_id": team.id,
            "context_enterprise_id": team.enterprise_id,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": self._short_id("Ev", 12),
            "event_time": int(self._clock()),
            "authorizations": [
                {
                    "enterprise_id": team.enterprise_id,
                    "team_id": team.id,
                    "user_id": team.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }
        if team.enterprise_id:
            envelope["enterprise_id"] = team.enterprise_id
        task = asyncio.get_running_loop().create_task(self._deliver_event(envelope))
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)
        return task

    # ----- sending -------------------------------------------------------------------------------

    async def _deliver_event(self, envelope: Json) -> list[Delivery]:
        attempts: list[Delivery] = []
        reason = ""
        for attempt in range(len(self.event_retry_delays) + 1):
            if attempt and self.event_retry_delays[attempt - 1] > 0:
                await asyncio.sleep(self.event_retry_delays[attempt - 1])
            delivery = await self._send_event(envelope, attempt, reason)
            attempts.append(delivery)
            response = delivery.response
            if response.error is None and response.status == 200:
                if attempt or not self._forced_retries:
                    break
                reason = self._forced_retries.pop(0)
            else:
                reason = {"operation_timeout": "http_timeout", None: "http_error"}.get(
                    response.error, "connection_failed"
                )
                what = response.error or f"HTTP {response.status}"
                self._problem(
                    f"event_callback {envelope['event_id']}: the bot answered {what}; Slack retries"
                )
        return attempts

    async def _send_event(self, envelope: Json, attempt: int, reason: str) -> Delivery:
        if self.socket_mode:
            retry: dict[str, Any] = {"retry_attempt": attempt, "retry_reason": reason}
            response, raw = await self._deliver_socket("event_callback", envelope, **retry)
            delivery = Delivery(
                "event_callback",
                envelope,
                raw,
                {"X-Slack-Retry-Num": str(attempt)} if attempt else {},
                response,
                "socket",
            )
            self.deliveries.append(delivery)
            return delivery
        assert self._session is not None and self.bot_events_url
        body = json.dumps(envelope).encode()
        headers = self._bot_headers(body, "application/json")
        if attempt:
            headers.update({"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason})
        response = await self._post_to_bot(body, headers)
        delivery = Delivery("event_callback", envelope, body, headers, response)
        self.deliveries.append(delivery)
        return delivery
