"""Twilio's wire formats: resource paths, dates as RFC 2822, SMS segments, channel prefixes."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Final

API_VERSION: Final = "2010-04-01"
API_PREFIX: Final = f"/{API_VERSION}"
_MESSAGES_PATH = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)/Messages\.json")
_MESSAGE_PATH = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json")
_ACCOUNT_PATH = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)\.json")

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_WHATSAPP = "whatsapp:"
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc2822(moment: datetime) -> str:
    """Format an aware datetime the way Twilio does: `Thu, 24 Aug 2023 05:01:45 +0000`."""
    # Hand-rolled rather than email.utils/strftime: it is on every message of every list page.
    m = moment.astimezone(UTC)
    return (
        f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month - 1]} {m.year:04d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} +0000"
    )


def segment_count(body: str) -> int:
    """SMS segments for a body: GSM-7 160/153 characters, otherwise UCS-2 70/67 code units."""
    if not body:
        return 1
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in body):
        units = len(body) + sum(ch in _GSM7_EXTENDED for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def _strip_channel(address: str) -> str:
    return address.removeprefix(_WHATSAPP)
