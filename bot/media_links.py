"""Links Twilio can fetch a reply's attachment from: `PUBLIC_URL/media/{token}`, sealed and expiring.

The token is the file's reference encrypted with the database key (Fernet: tamper-proof, stamped with
the time), so a link names one file, cannot be made up or altered, and stops working after an hour.
The file's own Slack URL needs the bot's token, which never leaves the bot: the link's door streams it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from storage.crypto import SecretBox

__all__ = ["LINK_SECONDS", "MEDIA_PATH", "FileRef", "MediaLinks"]

LINK_SECONDS: Final = 3600
MEDIA_PATH: Final = "/media/"


@dataclass(frozen=True)
class FileRef:
    """A Slack file a reply carries: where the bot reads it, and what Twilio is told it is."""

    team_id: str
    file_id: str
    url: str
    mimetype: str
    name: str = ""
    size: int | None = None


class MediaLinks:
    """Makes and reads the media links of one bot (one PUBLIC_URL, one key)."""

    def __init__(
        self,
        box: SecretBox,
        public_url: str,
        clock: Callable[[], datetime],
        *,
        seconds: int = LINK_SECONDS,
    ) -> None:
        self._box = box
        self._base = public_url.rstrip("/") + MEDIA_PATH
        self._clock = clock
        self._seconds = seconds

    def link(self, ref: FileRef) -> str:
        """The URL Twilio fetches `ref` from, good for an hour."""
        sealed = json.dumps(
            {"t": ref.team_id, "f": ref.file_id, "u": ref.url, "m": ref.mimetype, "n": ref.name},
            separators=(",", ":"),
        )
        return self._base + self._box.encrypt_at(sealed, self._clock())

    def read(self, token: str) -> FileRef | None:
        """The file a link names; None when it is not ours, was altered, or has expired."""
        if len(token) > 4000 or not token.isascii():
            return None
        text = self._box.decrypt_recent(token, max_age=self._seconds, now=self._clock())
        if text is None:
            return None
        try:
            data = json.loads(text)
            return FileRef(
                team_id=str(data["t"]),
                file_id=str(data["f"]),
                url=str(data["u"]),
                mimetype=str(data["m"]),
                name=str(data.get("n", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None
