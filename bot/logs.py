"""Logging set-up: console or JSON lines, each carrying who and what when written for a request, with a
last-line guard that redacts known secrets."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import IO

_REDACTED = "[redacted]"


@dataclass(frozen=True)
class RequestContext:
    """Who asked for what: stamped on every log line written while one request is handled."""

    request_id: str
    team: str = ""
    user: str = ""
    subcommand: str = ""


CONTEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RequestContext))

# A contextvar, so each request's task, and every task started from it (asyncio copies the context at
# task creation: Bolt's listener runner, TaskTracker.spawn), sees its own request and no other. It may hold
# a function that works the fields out, so a request that logs nothing pays nothing for them.
Binding = RequestContext | Callable[[], RequestContext]
_REQUEST: ContextVar[Binding | None] = ContextVar("log_request", default=None)


def bind(context: Binding) -> None:
    """Stamp `context` on every line logged from now on by this task and the tasks it starts later."""
    _REQUEST.set(context)


@contextlib.contextmanager
def scope(context: Binding) -> Iterator[None]:
    """`bind(context)` for the block only; afterwards this task logs as it did before."""
    token = _REQUEST.set(context)
    try:
        yield
    finally:
        _REQUEST.reset(token)


def current() -> RequestContext | None:
    """The request being handled by this task, if any."""
    found = _REQUEST.get()
    return found() if callable(found) else found


class AddRequestContext(logging.Filter):
    """Puts the current request's fields on each record (empty strings outside any request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current()
        for name in CONTEXT_FIELDS:
            setattr(record, name, "" if context is None else getattr(context, name))
        return True


def context_of(record: logging.LogRecord) -> dict[str, str]:
    """The request fields a record carries, without the empty ones."""
    found = {name: getattr(record, name, "") for name in CONTEXT_FIELDS}
    return {name: value for name, value in found.items() if isinstance(value, str) and value}


class RedactSecrets(logging.Filter):
    """Replaces any registered secret that reaches a log record, message, request fields or traceback,
    with [redacted].

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
            for name, value in context_of(record).items():
                setattr(record, name, self.scrub(value))
            if record.exc_info:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class ConsoleFormatter(logging.Formatter):
    """One line a record for people: `time LEVEL logger [request_id=… team=… user=… subcommand=…]: message`.

    The request's fields sit before the message, so a message of several lines cannot push them away.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        found = context_of(record)
        fields = " [" + " ".join(f"{name}={value}" for name, value in found.items()) + "]" if found else ""
        return f"{record.asctime} {record.levelname:<7} {record.name}{fields}: {record.message}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log collectors; request fields are top-level keys when present."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **context_of(record),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


REDACTOR = RedactSecrets()


def handler(
    fmt: str = "console", stream: IO[str] | None = None, redactor: RedactSecrets = REDACTOR
) -> logging.Handler:
    """A handler writing `fmt` ("console" or "json") lines to `stream` (stderr), request fields added and
    secrets redacted (in that order, so the fields are redacted too)."""
    out = logging.StreamHandler(sys.stderr if stream is None else stream)
    out.addFilter(AddRequestContext())
    out.addFilter(redactor)
    out.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    return out


def configure(level: str = "INFO", fmt: str = "console", secrets: Iterable[str] = ()) -> None:
    """Send the bot's logs to stderr in the chosen format, with secrets redacted."""
    for secret in secrets:
        REDACTOR.add(secret)
    root = logging.getLogger()
    root.handlers[:] = [handler(fmt)]
    root.setLevel(level)
    # Bolt logs each request at DEBUG and the access log is noise at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
