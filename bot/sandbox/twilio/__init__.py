"""A Twilio Messages API simulator: a real aiohttp server on loopback.

The playground, the tests and the benchmarks point the bot's `TWILIO_API_URL` here. It speaks the
Messages, Account and IncomingPhoneNumbers routes of API v2010 (and the Messaging Service's inbound
settings) with Twilio's JSON shapes, error codes, magic test numbers and Basic auth, moves message
statuses on with a `SimClock` (computed on read), calls the bot back the way Twilio does (signed status
callbacks on that clock, and texts "from a phone" to our numbers, with media and opt-out keywords), and
can be told to misbehave (`Fault`, `CallbackFault`) so retries, timeouts and unknown outcomes can be
tested end to end::

    sim = TwilioSimulator(SimClock())
    sim.add_account("AC…", "token", numbers=["+15557654321"], services=["MG…"])
    base_url = await sim.start()          # http://127.0.0.1:PORT
    sim.inject(Fault("status", status=429, retry_after=1))
    sim.set_sms_url("+15557654321", "http://127.0.0.1:3000/twilio/inbound")
    await sim.receive_text("+15550001234", "+15557654321", "hello")
    sim.clock.advance(timedelta(seconds=5)); await sim.settle_callbacks()
    ...
    await sim.stop()

Out of process, the same controls are JSON routes under `/_sim/` (no auth: it only listens on loopback),
and `python -m bot.sandbox.twilio` runs it alone, printing its URL as the first line of stdout.

One module a job: `accounts` (accounts, auth, the Account resource), `messages` (the Messages API),
`phone_numbers` (IncomingPhoneNumbers and Messaging Services), `callbacks` (status callbacks),
`inbound` (texts from phones, opt-outs, the phone view), `media` (inbound media and its CDN),
`webhooks` (signing and sending requests to the bot), `faults` (fault injection), `control` (the
`/_sim/` routes), `recording` (the request log), `state` and `clock` (what the parts share), `formats`
and `errors` (Twilio's wire shapes), `simulator` (one server for all of them) and `standalone` (its own
process).
"""

from bot.sandbox.twilio.accounts import (
    DEFAULT_FROM,
    DEFAULT_SERVICE_SID,
    MAGIC_FROM,
    SANDBOX_ACCOUNT,
    SANDBOX_ACCOUNT_SID,
    SERVICE_NUMBER,
    SandboxAccount,
)
from bot.sandbox.twilio.callbacks import CALLBACK_FAULT_KINDS, CallbackFault, CallbackFaultKind
from bot.sandbox.twilio.clock import SimClock
from bot.sandbox.twilio.errors import ERRORS, TwilioApiError
from bot.sandbox.twilio.faults import FAULT_KINDS, Fault, FaultKind
from bot.sandbox.twilio.formats import API_PREFIX, API_VERSION, rfc2822, segment_count
from bot.sandbox.twilio.inbound import AUTO_REPLIES, HELP_WORDS, START_WORDS, STOP_WORDS, InboundText
from bot.sandbox.twilio.media import InboundMedia, MediaFetch
from bot.sandbox.twilio.messages import (
    DEFAULT_PAGE_SIZE,
    DELIVERED_AFTER,
    MAGIC_FROM_ERRORS,
    MAGIC_TO_ERRORS,
    MAX_BODY_CHARS,
    MAX_MEDIA,
    MAX_PAGE_SIZE,
    NOT_COMPLETE,
    PRICE_PER_SEGMENT,
    SCHEDULE_MAX_AHEAD,
    SCHEDULE_MIN_AHEAD,
    SENT_AFTER,
    SERVICE_QUEUED_AFTER,
    UNDELIVERED_SUFFIX,
    MessageState,
    StoredMessage,
)
from bot.sandbox.twilio.phone_numbers import InboundTarget
from bot.sandbox.twilio.recording import RecordedRequest
from bot.sandbox.twilio.simulator import TwilioSimulator
from bot.sandbox.twilio.standalone import main
from bot.sandbox.twilio.webhooks import (
    CALLBACK_POLICY,
    INBOUND_POLICY,
    SIGNATURE_HEADER,
    Attempt,
    Webhook,
    WebhookPolicy,
    twilio_signature,
)

__all__ = [
    "API_PREFIX",
    "API_VERSION",
    "AUTO_REPLIES",
    "CALLBACK_FAULT_KINDS",
    "CALLBACK_POLICY",
    "DEFAULT_FROM",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SERVICE_SID",
    "DELIVERED_AFTER",
    "ERRORS",
    "FAULT_KINDS",
    "HELP_WORDS",
    "INBOUND_POLICY",
    "MAGIC_FROM",
    "MAGIC_FROM_ERRORS",
    "MAGIC_TO_ERRORS",
    "MAX_BODY_CHARS",
    "MAX_MEDIA",
    "MAX_PAGE_SIZE",
    "NOT_COMPLETE",
    "PRICE_PER_SEGMENT",
    "SANDBOX_ACCOUNT",
    "SANDBOX_ACCOUNT_SID",
    "SCHEDULE_MAX_AHEAD",
    "SCHEDULE_MIN_AHEAD",
    "SENT_AFTER",
    "SERVICE_NUMBER",
    "SERVICE_QUEUED_AFTER",
    "SIGNATURE_HEADER",
    "START_WORDS",
    "STOP_WORDS",
    "UNDELIVERED_SUFFIX",
    "Attempt",
    "CallbackFault",
    "CallbackFaultKind",
    "Fault",
    "FaultKind",
    "InboundMedia",
    "InboundTarget",
    "InboundText",
    "MediaFetch",
    "MessageState",
    "RecordedRequest",
    "SandboxAccount",
    "SimClock",
    "StoredMessage",
    "TwilioApiError",
    "TwilioSimulator",
    "Webhook",
    "WebhookPolicy",
    "main",
    "rfc2822",
    "segment_count",
    "twilio_signature",
]
