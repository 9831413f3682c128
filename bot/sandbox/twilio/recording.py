"""The record of every API request the simulator received, for tests and ``GET /_sim/requests``."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.sandbox.twilio.faults import FaultKind
from bot.sandbox.twilio.formats import API_PREFIX

_ACCOUNT_PREFIX = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/.]+)(?:\.json$|/)")


@dataclass
class RecordedRequest:
    """One request the simulator received (API routes only, not `/_sim/`). Never holds a secret."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    username: str | None  # the Basic auth user (account or API key SID); the password is never kept
    time: datetime  # sim clock
    fault: FaultKind | None = None  # the fault applied to it, if any
    status: int | None = None  # the answer's status once handled (None: connection dropped first)
    message_sid: str | None = None  # the message created or addressed, if any

    @property
    def account_sid(self) -> str | None:
        """The account SID in the path, if the path has one."""
        match = _ACCOUNT_PREFIX.match(self.path)
        return match["account"] if match else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for `GET /_sim/requests`)."""
        data = dataclasses.asdict(self)
        data["time"] = self.time.isoformat()
        data["account_sid"] = self.account_sid
        return data
