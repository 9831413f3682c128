"""Async client for Twilio's Messages API, its typed answers and TwilioError with plain-words hints."""

from bot.twilio.client import MAX_MEDIA, MAX_PAGE_SIZE, TwilioClient, format_date_sent, format_send_at
from bot.twilio.errors import HINTS, TwilioError, hint_for
from bot.twilio.models import AccountInfo, Credentials, Message, MessagePage

__all__ = [
    "HINTS",
    "MAX_MEDIA",
    "MAX_PAGE_SIZE",
    "AccountInfo",
    "Credentials",
    "Message",
    "MessagePage",
    "TwilioClient",
    "TwilioError",
    "format_date_sent",
    "format_send_at",
    "hint_for",
]
