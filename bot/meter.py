"""What the doors report to the process's metrics, as a protocol, so no door imports prometheus_client.

The composition root (`bot.server`) hands the doors a `bot.metrics.Metrics`; tests and the CLI get
`NO_METER`, which records nothing. Values are free strings here: the metrics side maps each one onto a
fixed vocabulary (anything else becomes "other"), so a label can never carry user input.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_METER", "Meter"]


class Meter(Protocol):
    """The door-side counters."""

    def command(self, subcommand: str, outcome: str) -> None:
        """A `/twilio` command was answered: `outcome` is how its ack went (accepted, rejected…)."""

    def operation(self, subcommand: str, outcome: str) -> None:
        """A Twilio command ran after the ack (from a command, a form or a button) and ended so."""

    def reply(self, status: int | None) -> None:
        """Slack answered a post to a response_url with `status` (None: no answer)."""


class _NoMeter:
    def command(self, subcommand: str, outcome: str) -> None:
        pass

    def operation(self, subcommand: str, outcome: str) -> None:
        pass

    def reply(self, status: int | None) -> None:
        pass


NO_METER: Meter = _NoMeter()
