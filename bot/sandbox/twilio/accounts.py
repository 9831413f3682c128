"""Accounts: their auth tokens, API keys, numbers and services; Basic auth; the Account resource."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from bot.sandbox.twilio.errors import TwilioApiError
from bot.sandbox.twilio.formats import _E164, API_PREFIX, _strip_channel, rfc2822
from bot.sandbox.twilio.state import SimState

MAGIC_FROM: Final = "+15005550006"
"""Twilio's magic sender: accepted as a valid From for every account."""
DEFAULT_FROM: Final = "+15557654321"
"""The sandbox account's ordinary number (also its WhatsApp sender, as ``whatsapp:+15557654321``)."""
SERVICE_NUMBER: Final = "+15557650100"
"""A sandbox number that belongs to the sandbox Messaging Service: its inbound texts go to the service."""
SANDBOX_ACCOUNT_SID: Final = "AC" + "5a4db0c5" * 4
DEFAULT_SERVICE_SID: Final = "MG" + "5e41ce00" * 4


@dataclass(frozen=True)
class SandboxAccount:
    """The well-known account the playground and `python -m bot.sandbox.twilio` create."""

    sid: str
    friendly_name: str
    numbers: tuple[str, ...]
    service_sid: str
    service_numbers: tuple[str, ...] = ()  # the numbers of `numbers` that belong to the service


SANDBOX_ACCOUNT: Final = SandboxAccount(
    sid=SANDBOX_ACCOUNT_SID,
    friendly_name="Sandbox",
    numbers=(MAGIC_FROM, DEFAULT_FROM, SERVICE_NUMBER),
    service_sid=DEFAULT_SERVICE_SID,
    service_numbers=(SERVICE_NUMBER,),
)

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_ACCOUNT_SUBRESOURCES = {
    "available_phone_numbers": "AvailablePhoneNumbers",
    "calls": "Calls",
    "conferences": "Conferences",
    "incoming_phone_numbers": "IncomingPhoneNumbers",
    "notifications": "Notifications",
    "outgoing_caller_ids": "OutgoingCallerIds",
    "recordings": "Recordings",
    "transcriptions": "Transcriptions",
    "addresses": "Addresses",
    "signing_keys": "SigningKeys",
    "connect_apps": "ConnectApps",
    "sip": "SIP",
    "authorized_connect_apps": "AuthorizedConnectApps",
    "usage": "Usage",
    "keys": "Keys",
    "applications": "Applications",
    "short_codes": "SMS/ShortCodes",
    "queues": "Queues",
    "messages": "Messages",
    "balance": "Balance",
}


@dataclass
class _Account:
    sid: str
    auth_token: str = field(repr=False)
    friendly_name: str
    numbers: tuple[str, ...]
    services: frozenset[str]
    api_keys: dict[str, str] = field(repr=False)
    date_created: datetime
    service_numbers: dict[str, str] = field(default_factory=dict)  # number → the service it belongs to


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, secret = decoded.partition(":")
    return (user, secret) if sep else None


class Accounts(SimState):
    """Adding accounts, checking credentials, and the ``Accounts/{sid}.json`` resource."""

    def add_account(
        self,
        sid: str,
        auth_token: str,
        *,
        friendly_name: str = "Sandbox",
        api_keys: Mapping[str, str] | None = None,
        numbers: Iterable[str] = (),
        services: Iterable[str] = (),
        service_numbers: Mapping[str, str] | None = None,
    ) -> None:
        """Add (or replace) an account: its auth token, API keys (SK… → secret), numbers and services.

        Every service's sender pool is the account's numbers (the first one sends). `service_numbers`
        (number → MG…) puts some of the numbers in a service: their inbound texts go to the service.
        """
        if not isinstance(sid, str) or not _ACCOUNT_SID.fullmatch(sid):
            raise ValueError("account sid must be AC followed by 32 hex digits")
        if not isinstance(auth_token, str) or not auth_token:
            raise ValueError("auth_token must be a non-empty string")
        keys = dict(api_keys or {})
        for key_sid, secret in keys.items():
            if not _API_KEY_SID.fullmatch(key_sid) or not isinstance(secret, str) or not secret:
                raise ValueError("api_keys must map SK + 32 hex digits to a non-empty secret")
            owner = self._api_keys.get(key_sid)
            if owner is not None and owner != sid:
                raise ValueError(f"API key {key_sid} already belongs to another account")
        own_numbers = tuple(dict.fromkeys(_strip_channel(n) for n in numbers))
        if not all(isinstance(n, str) and _E164.fullmatch(n) for n in own_numbers):
            raise ValueError("numbers must be E.164, like +15557654321")
        service_sids = frozenset(services)
        if not all(isinstance(s, str) and _SERVICE_SID.fullmatch(s) for s in service_sids):
            raise ValueError("services must be MG followed by 32 hex digits")
        if not isinstance(service_numbers, Mapping | None):
            raise ValueError("service_numbers must map numbers to service SIDs")
        members = {_strip_channel(str(n)): s for n, s in (service_numbers or {}).items()}
        if not all(n in own_numbers and s in service_sids for n, s in members.items()):
            raise ValueError("service_numbers must map the account's own numbers to its own services")
        previous = self._accounts.get(sid)
        if previous is not None:
            for key_sid in previous.api_keys:
                self._api_keys.pop(key_sid, None)
        self._accounts[sid] = _Account(
            sid=sid,
            auth_token=auth_token,
            friendly_name=friendly_name,
            numbers=own_numbers,
            services=service_sids,
            api_keys=keys,
            date_created=previous.date_created if previous else self.clock.now(),
            service_numbers=members,
        )
        self._api_keys.update(dict.fromkeys(keys, sid))
        self._by_account.setdefault(sid, [])

    def add_sandbox_account(self, auth_token: str | None = None, *, sid: str = SANDBOX_ACCOUNT.sid) -> str:
        """Add `SANDBOX_ACCOUNT` (under `sid`) with `auth_token` (random when None); returns the token."""
        token = auth_token or secrets.token_hex(16)
        self.add_account(
            sid,
            token,
            friendly_name=SANDBOX_ACCOUNT.friendly_name,
            numbers=SANDBOX_ACCOUNT.numbers,
            services=(SANDBOX_ACCOUNT.service_sid,),
            service_numbers=dict.fromkeys(SANDBOX_ACCOUNT.service_numbers, SANDBOX_ACCOUNT.service_sid),
        )
        return token

    def _authenticate(self, credentials: tuple[str, str] | None, path_account: str) -> _Account:
        if credentials is not None:
            user, secret = credentials
            owner = self._api_keys.get(user, user)
            account = self._accounts.get(owner)
            if account is not None and account.sid == path_account:
                expected = account.auth_token if user == owner else account.api_keys[user]
                if hmac.compare_digest(secret.encode(), expected.encode()):
                    return account
        raise TwilioApiError(20003)

    def _authenticate_any(self, credentials: tuple[str, str] | None) -> _Account:
        """The account these credentials belong to (for routes without an account SID in the path)."""
        owner = self._api_keys.get(credentials[0], credentials[0]) if credentials else ""
        return self._authenticate(credentials, owner)

    def _account_owning(self, number: str) -> _Account | None:
        """The account that has `number` (channel prefix ignored), if any."""
        bare = _strip_channel(number)
        return next((a for a in self._accounts.values() if bare in a.numbers), None)

    @staticmethod
    def _account_json(account: _Account) -> dict[str, Any]:
        base = f"{API_PREFIX}/Accounts/{account.sid}"
        return {
            "auth_token": None,  # Twilio shows it; a stand-in that logs answers must never echo secrets
            "date_created": rfc2822(account.date_created),
            "date_updated": rfc2822(account.date_created),
            "friendly_name": account.friendly_name,
            "owner_account_sid": account.sid,
            "sid": account.sid,
            "status": "active",
            "subresource_uris": {k: f"{base}/{v}.json" for k, v in _ACCOUNT_SUBRESOURCES.items()},
            "type": "Full",
            "uri": f"{base}.json",
        }
