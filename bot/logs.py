"""Logging set-up: console or JSON lines, and a last-line guard that redacts known secrets."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

_REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replaces any registered secret that reaches a log record, message or traceback, with [redacted].

    Secrets should never be logged in the first place; this is the guard behind that rule.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = {s for s in secrets if s and len(s) >= 6}

    def add(self, secret: str | None) -> None:
        """Register one more secret (a Twilio token as it is stored, say)."""
        if secret and len(secret) >= 6:
            self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        """`text` with every registered secret replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


REDACTOR = RedactSecrets()


def configure(level: str = "INFO", fmt: str = "console", secrets: Iterable[str] = ()) -> None:
    """Send the bot's logs to stderr in the chosen format, with secrets redacted."""
    for secret in secrets:
        REDACTOR.add(secret)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(REDACTOR)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Bolt logs each request at DEBUG and the access log is noise at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
