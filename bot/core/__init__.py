"""Pure logic with no I/O: the /twilio grammar, phone numbers and Twilio's rules.

Nothing here imports Slack, HTTP, storage or any other part of the bot, and no function reads
the clock: callers pass `now`. That keeps every rule testable exhaustively and reusable from any
front end.
"""

from bot.core.commands import Command, Incomplete, parse_command
from bot.core.errors import CommandError, InputError
from bot.core.phone import PhoneNumber, parse_phone

__all__ = [
    "Command",
    "CommandError",
    "Incomplete",
    "InputError",
    "PhoneNumber",
    "parse_command",
    "parse_phone",
]
