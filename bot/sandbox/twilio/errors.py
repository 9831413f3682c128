"""Twilio's error answers: the codes the simulator uses and the JSON shape they come in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import web

ERRORS: Final[Mapping[int, tuple[int, str]]] = {
    20001: (400, "Invalid parameter"),
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20009: (400, "Cannot delete this resource before it is complete"),
    20404: (404, "The requested resource was not found"),
    21211: (400, "Invalid 'To' Phone Number"),
    21212: (400, "Invalid 'From' Phone Number"),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number "
        "for this destination/account",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit"),
    21623: (400, "Number of media files exceeds allowed limit"),
    21701: (400, "The Messaging Service Sid is invalid"),
    21910: (400, "Invalid From and To pair. From and To should be of the same channel"),
    30409: (400, "Message cannot be canceled"),
    35111: (400, "SendAt timestamp is missing"),
    35114: (400, "Scheduling does not support this timestamp"),
    35118: (400, "MessagingServiceSid is required to schedule a message"),
    35126: (400, "The ScheduleType value provided is not supported"),
}


class TwilioApiError(Exception):
    """An error answer in Twilio's shape: `{code, message, more_info, status}`."""

    def __init__(self, code: int, message: str | None = None, *, status: int | None = None) -> None:
        default_status, default_message = ERRORS.get(code, (400, "Invalid request"))
        self.code = code
        self.status = status or default_status
        self.message = message or default_message
        super().__init__(f"{self.code}: {self.message}")

    def response(self) -> web.Response:
        """The JSON answer Twilio would give."""
        return _error_response(self.status, self.code, self.message)


def _error_response(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)
