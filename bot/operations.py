"""The six Twilio commands as async functions: request + account → result. Nothing here knows Slack.

Creates (send, schedule) go through the outbox: a row keyed by the caller's idempotency key is claimed
before the Twilio call and settled after it, so a repeated delivery of the same user action finds the key
taken and does nothing, and a process killed mid-call leaves a pending row that `reconcile` settles.
While a create is being worked on, its task holds a lease on the key, so a replica that restarts
meanwhile leaves the row to its live owner instead of reconciling it: on SQLite a file lock
(`bot.inflight`), on PostgreSQL a lease stored in the row (`bot.leases`), which other replicas take over
once it runs out.

A create whose answer was lost (timeout, 5xx, dropped connection) is never retried: the message is looked
up at Twilio instead (same To and body, created since the claim), and only when it is not there does the
user hear that the outcome is unknown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from bot.core.commands import (
    CancelCommand,
    DeleteCommand,
    FetchCommand,
    ListCommand,
    ScheduleCommand,
    SendCommand,
)
from bot.core.errors import InputError, SentenceError
from bot.core.phone import PhoneNumber
from bot.core.rules import (
    format_send_at,
    schedule_service,
    scheduled_list_problems,
    sender_for,
    sender_or_service,
)
from bot.inflight import InFlight, Lease
from bot.leases import Leases, Write
from bot.status import CardFacts, LiveStatus
from bot.twilio.client import TwilioClient
from bot.twilio.errors import TwilioError
from bot.twilio.models import Credentials, Message, MessagePage
from storage.accounts import AccountStore, StoredAccount
from storage.audit import AuditLog, NewAuditEntry
from storage.db import DatabaseUnavailable
from storage.outbox import NewOutboxEntry, Outbox, OutboxEntry, Settlement

__all__ = [
    "ACCOUNT_GONE",
    "Context",
    "DatabaseUnavailable",
    "Duplicate",
    "OperationError",
    "Operations",
    "Sent",
    "StoredAccount",
    "Unposted",
]

log = logging.getLogger(__name__)

# Our clock and Twilio's may disagree by this much when matching a message to the claim that made it.
CLOCK_SKEW = timedelta(minutes=2)
# A create as the outbox keeps it: Twilio's form fields by our names ("media_urls" only with media).
_Request = dict[str, str | int | list[str] | None]
# How far back a lookup for a lost answer reads (pages of 100, newest first).
LOOKUP_PAGES = 5
ACCOUNT_GONE = "account no longer configured"
FOUND_AFTER_LOST_ANSWER = (
    "Twilio's answer was lost on the way back, so the bot looked the message up at Twilio: it was accepted "
    "once, and nothing was re-sent."
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OperationError(SentenceError):
    """A problem on our side of the call (no account, unknown label), told in one sentence."""


class Who(TypedDict):
    """Who made a request, under the names the audit log, the outbox and the journal give those fields."""

    team_id: str
    enterprise_id: str | None
    user_id: str


@dataclass(frozen=True)
class Context:
    """Who asked, and where: what the audit log and the outbox need to know about a request."""

    team_id: str
    user_id: str
    channel_id: str | None
    enterprise_id: str | None = None
    response_url: str | None = None

    def who(self) -> Who:
        """Who asked, as keyword arguments of a storage row: `NewAuditEntry(**ctx.who(), ...)`.

        The channel is not in it: the journal keeps "no channel" as None, the audit log and outbox as "".
        """
        return Who(team_id=self.team_id, enterprise_id=self.enterprise_id, user_id=self.user_id)


@dataclass(frozen=True)
class Sent:
    """A create Twilio accepted."""

    message: Message
    account: StoredAccount
    send_at: datetime | None = None
    # Set when Twilio's answer was lost and the message was found by looking it up.
    note: str | None = None


@dataclass(frozen=True)
class Duplicate:
    """The idempotency key was already claimed: another delivery of the same action owns it and its card."""


@dataclass(frozen=True)
class Unposted:
    """A create a stopped process left without its card, settled now: what its card needs to say."""

    team_id: str
    user_id: str
    channel_id: str | None
    response_url: str | None
    operation: str  # "send" or "schedule"
    account_label: str
    to: str
    body: str
    # What Twilio has; None when the outcome stays unknown.
    message: Message | None
    # Set when the outcome is unknown because the account was removed here since.
    account_gone: bool = False
    # The action's idempotency key and when it was claimed: a card already posted for it can be found.
    key: str = ""
    created_at: datetime | None = None


def _send_request(cmd: SendCommand, account: StoredAccount) -> _Request:
    """Twilio's fields for a send on `account`: its sender (or service) by the sender rules."""
    sender, service = sender_or_service(
        account.label,
        sender=str(cmd.from_) if cmd.from_ else None,
        default_from=account.default_from,
        default_service=account.default_service_sid,
    )
    if sender:  # Twilio wants both ends on the same channel, the default sender too
        sender = str(sender_for(cmd.to, PhoneNumber.from_str(sender)))
    return {"to": str(cmd.to), "from": sender, "service": service, "body": cmd.body}


def _schedule_request(cmd: ScheduleCommand, account: StoredAccount) -> _Request:
    """Twilio's fields for a schedule on `account`, through its Messaging Service."""
    service = schedule_service(
        account.label, service=cmd.service, default_service=account.default_service_sid
    )
    return {"to": str(cmd.to), "service": service, "body": cmd.body, "send_at": format_send_at(cmd.send_at)}


def _summary(fields: Mapping[str, object]) -> str:
    """A short, secret-free line for the audit log: numbers, lengths and the first words of a body."""
    parts: list[str] = []
    for key, value in fields.items():
        if value is None or value == "":
            continue
        if key == "body":
            text = str(value)
            snippet = text[:40] + ("…" if len(text) > 40 else "")
            parts.append(f"body={snippet!r} ({len(text)} chars)")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)[:500]


@dataclass(frozen=True, kw_only=True, eq=False)  # eq=False: one service, told apart by identity
class Operations:
    """Runs Twilio operations for a workspace's stored accounts, with audit and outbox bookkeeping."""

    twilio: TwilioClient
    accounts: AccountStore
    audit: AuditLog
    outbox: Outbox
    concurrency: int = 50
    inflight: InFlight = field(default_factory=lambda: InFlight(None))
    # Set on PostgreSQL: claims carry this replica's lease instead of relying on file locks alone.
    leases: Leases | None = None
    clock: Callable[[], datetime] = _utcnow
    # Where Twilio reports each message's status changes (PUBLIC_URL/twilio/status), if anywhere.
    status_callback: str | None = None
    live: LiveStatus | None = None
    _limits: dict[str, asyncio.Semaphore] = field(default_factory=dict, init=False, repr=False)

    def _limit(self, account_sid: str) -> asyncio.Semaphore:
        # A bounded number of calls in flight per Twilio account: Twilio queues per account, and a burst
        # from Slack should wait here rather than pile up connections and 429s.
        sem = self._limits.get(account_sid)
        if sem is None:
            sem = self._limits[account_sid] = asyncio.Semaphore(self.concurrency)
        return sem

    async def credentials(self, team_id: str, label: str | None) -> tuple[StoredAccount, Credentials] | None:
        """The team's account by label (or its default) with the client's credentials; None if absent."""
        found = await self.accounts.credentials(team_id, label)
        if found is None:
            return None
        account, secret = found
        return account, Credentials(
            account_sid=secret.account_sid, secret=secret.secret, api_key_sid=secret.api_key_sid
        )

    async def resolve(self, ctx: Context, label: str | None) -> tuple[StoredAccount, Credentials]:
        """The team's account by label (or its default) with its credentials, or an OperationError."""
        found = await self.credentials(ctx.team_id, label)
        if found is None:
            if label:
                names = [a.label for a in await self.accounts.list(ctx.team_id)]
                known = f" This workspace has: {', '.join(names)}." if names else ""
                raise OperationError(f"There is no Twilio account labelled '{label}'.{known}")
            raise OperationError(
                "No Twilio account is set up for this workspace yet. "
                "A workspace admin can add one with `/twilio setup`."
            )
        return found

    async def _audit(
        self,
        ctx: Context,
        operation: str,
        account: StoredAccount | None,
        summary: str,
        *,
        outcome: str,
        message_sid: str | None = None,
        error: TwilioError | None = None,
    ) -> None:
        await self.audit.record(
            NewAuditEntry(
                **ctx.who(),
                channel_id=ctx.channel_id or "",
                operation=operation,
                account_label=account.label if account else None,
                account_sid=account.account_sid if account else None,
                summary=summary,
                outcome=outcome,
                message_sid=message_sid,
                error_code=error.code if error else None,
                error_message=str(error)[:300] if error else None,
            )
        )

    async def _audit_view(self, *args: Any, **kwargs: Any) -> None:
        """`_audit` after a call that is not a create: Twilio has answered, so a database that does not
        answer now costs the audit line only, not the user's result."""
        try:
            await self._audit(*args, **kwargs)
        except DatabaseUnavailable as err:
            log.warning("audit line lost: the database is not answering (%s)", err.detail)

    async def create(
        self, ctx: Context, cmd: SendCommand | ScheduleCommand, *, key: str, lease: Lease | None = None
    ) -> Sent | Duplicate:
        """Send or schedule one message, at most once per `key` (`lease`: the key's, if the caller has it)."""
        account, creds = await self.resolve(ctx, cmd.account)
        try:
            if isinstance(cmd, SendCommand):
                request = _send_request(cmd, account)
            else:
                request = _schedule_request(cmd, account)
        except InputError as err:
            raise OperationError(err.message) from None
        return await self._create(
            ctx, cmd.subcommand, account, creds, request, media=cmd.media, key=key, lease=lease
        )

    async def reply(
        self,
        ctx: Context,
        *,
        account_label: str,
        account_sid: str,
        from_: str,
        to: str,
        body: str,
        key: str,
        media: list[str] | None = None,
    ) -> Sent | Duplicate:
        """Send a conversation's reply from our number to theirs, at most once per `key`.

        The account must still be the one the conversation began on: a label now naming another
        Twilio account (or none) is refused rather than sending from someone else's number.
        """
        account, creds = await self.resolve(ctx, account_label)
        if account.account_sid != account_sid:
            raise OperationError(
                f"the Twilio account labelled '{account_label}' is not the one this conversation began on."
            )
        request: _Request = {"to": to, "from": from_, "body": body}
        # A reply is a send to the outbox and the audit log (its key says it came from a thread).
        return await self._create(ctx, "send", account, creds, request, media=media or (), key=key)

    async def _create(
        self,
        ctx: Context,
        operation: str,
        account: StoredAccount,
        creds: Credentials,
        request: _Request,
        *,
        media: Sequence[str],
        key: str,
        lease: Lease | None = None,
    ) -> Sent | Duplicate:
        if media:
            request = {**request, "media_urls": list(media)}
        # A lease handed in was taken when the action was accepted, before its ack.
        lease = lease if lease is not None and lease.key == key else self.inflight.try_acquire(key)
        if lease is None:
            log.info("duplicate delivery of %s ignored (another delivery is working on it)", operation)
            return Duplicate()
        task = asyncio.current_task()
        leases = self.leases
        let_go: Callable[[], None] = lambda: None  # noqa: E731
        if task is not None:
            # Held until the whole user action (card included) is done, however the task ends.
            task.add_done_callback(lambda _: lease.release())
            if leases is not None:
                let_go = leases.hold(key)
                task.add_done_callback(lambda _: let_go())
        claimed_at = self.clock()
        try:
            _, fresh = await self.outbox.claim(
                NewOutboxEntry(
                    key=key,
                    **ctx.who(),
                    channel_id=ctx.channel_id or "",
                    response_url=ctx.response_url,
                    operation=operation,
                    request=request,
                    account_label=account.label,
                    account_sid=account.account_sid,
                ),
                owner=None if leases is None else leases.owner,
                lease_seconds=120.0 if leases is None else leases.lease_seconds,
            )
        except BaseException:
            lease.release()
            let_go()
            raise
        if not fresh:
            lease.release()
            let_go()  # another replica's claim: its lease is not ours to renew
            log.info("duplicate delivery of %s ignored (outbox key already claimed)", operation)
            return Duplicate()
        if task is None:
            lease.release()  # nothing to hold it for; the outbox claim still guards the key
        summary = _summary(request)
        try:
            async with self._limit(account.account_sid):
                message = await self._call_create(creds, request)
        except TwilioError as err:
            found = None
            if err.unknown_outcome:
                try:
                    found = await self._look_up(creds, key, request, since=claimed_at - CLOCK_SKEW)
                except TwilioError as lookup_err:
                    log.warning("could not look the message up at Twilio: %s", lookup_err.code or "")
                except DatabaseUnavailable as db_err:
                    log.warning("could not check the lookup against the outbox: %s", db_err.detail)
            if found is not None:
                log.warning("%s: Twilio's answer was lost; found the message by looking it up", operation)
                sid = found.sid
                await self._record(key, lambda: self.outbox.settle(key, Settlement("sent", message_sid=sid)))
                await self._record(
                    key, lambda: self._audit(ctx, operation, account, summary, outcome="ok", message_sid=sid)
                )
                sent = Sent(found, account, _send_at(request), note=FOUND_AFTER_LOST_ANSWER)
                await self._track(ctx, operation, sent)
                return sent
            state = "unknown" if err.unknown_outcome else "failed"
            failure = err  # `err` is unbound after this block, and a kept write may run later
            await self._record(
                key,
                lambda: self.outbox.settle(
                    key, Settlement(state, error_code=failure.code, error_message=str(failure)[:300])
                ),
            )
            outcome = "unknown" if err.unknown_outcome else "error"
            await self._record(
                key, lambda: self._audit(ctx, operation, account, summary, outcome=outcome, error=failure)
            )
            raise
        except BaseException:
            # Cancelled (shutdown) or a bug: the row stays pending and start-up reconciliation settles it,
            # because we cannot tell whether Twilio applied the create.
            raise
        sid = message.sid
        await self._record(key, lambda: self.outbox.settle(key, Settlement("sent", message_sid=sid)))
        await self._record(
            key, lambda: self._audit(ctx, operation, account, summary, outcome="ok", message_sid=sid)
        )
        sent = Sent(message, account, _send_at(request))
        await self._track(ctx, operation, sent)
        return sent

    async def _track(self, ctx: Context, operation: str, sent: Sent) -> None:
        """Follow the message's status from now on (when live status is on), before its card is out."""
        if self.live is None or not self.live.enabled:
            return
        facts = CardFacts(
            message=sent.message,
            requested_by=ctx.user_id,
            account_label=sent.account.label,
            operation=operation,
            send_at=sent.send_at,
            note=sent.note,
        )
        try:
            await self.live.opened(
                team_id=ctx.team_id, message=sent.message, account_sid=sent.account.account_sid, facts=facts
            )
        except Exception:
            # The message went out and its card must still be posted; only live updates are lost.
            log.exception("could not start following the status of %s", sent.message.sid)

    async def current(self, team_id: str, account_label: str, sid: str) -> Message | None:
        """The message as Twilio has it now, asked with the team's account `account_label`; None when the
        account is gone or Twilio cannot say (logged)."""
        found = await self.credentials(team_id, account_label)
        if found is None:
            return None
        account, creds = found
        try:
            async with self._limit(account.account_sid):
                return await self.twilio.fetch(creds, sid)
        except TwilioError as err:
            log.warning("could not fetch %s to refresh its card: %s", sid, err.code or type(err).__name__)
            return None

    async def _record(self, key: str, write: Write) -> None:
        """Write bookkeeping of a create Twilio already answered.

        On PostgreSQL a database outage must not turn a sent message into an error ("nothing was
        sent" would be false): the write waits in `Leases` and the heartbeat retries it.
        """
        if self.leases is None:
            await write()
        else:
            await self.leases.write(key, write)

    async def _look_up(
        self,
        creds: Credentials,
        key: str,
        request: Mapping[str, object],
        *,
        since: datetime,
    ) -> Message | None:
        """The message a create with this request made, if Twilio has it: same To and body, created since
        `since`, and not already recorded for another outbox row. None when not found; raises TwilioError
        when Twilio cannot be asked.
        """
        to = str(request.get("to") or "")
        body = str(request.get("body") or "")
        scheduled = bool(request.get("send_at"))
        page_uri: str | None = None
        candidates: list[Message] = []
        for _ in range(LOOKUP_PAGES):
            # Scheduled messages may be missing from a list filtered by To, so those read everything.
            page = await self.twilio.list_messages(
                creds, to=None if scheduled or page_uri else to, page_size=100, page_uri=page_uri
            )
            older = False
            for message in page.messages:
                if message.date_created is not None and message.date_created < since:
                    older = True
                    continue
                if message.to == to and message.body == body:
                    candidates.append(message)
            if older or not page.next_page_uri:
                break
            page_uri = page.next_page_uri
        # Newest first from Twilio: the oldest match is the one this claim made.
        for message in reversed(candidates):
            if not await self.outbox.sid_recorded(message.sid, other_than=key):
                return message
        return None

    async def _call_create(
        self, creds: Credentials, request: Mapping[str, str | int | list[str] | None]
    ) -> Message:
        to, body = str(request["to"]), str(request["body"])
        media = request.get("media_urls")
        media_urls = tuple(media) if isinstance(media, list) else ()
        sender = request.get("from")
        service = request.get("service")
        return await self.twilio.send(
            creds,
            to=to,
            body=body,
            from_=str(sender) if sender else None,
            messaging_service_sid=str(service) if service and not sender else None,
            send_at=_send_at(request),
            media_urls=media_urls,
            status_callback=self.status_callback,
        )

    async def list(
        self, ctx: Context, cmd: ListCommand, *, page_uri: str | None = None
    ) -> tuple[MessagePage, StoredAccount]:
        """One page of messages (the next one when `page_uri` is given)."""
        problems = scheduled_list_problems(
            to=cmd.to is not None, from_=cmd.from_ is not None, date=cmd.date_sent is not None
        )
        if cmd.scheduled_only and problems:
            raise OperationError(problems[0].message)
        account, creds = await self.resolve(ctx, cmd.account)
        summary = _summary(
            {"to": cmd.to and str(cmd.to), "from": cmd.from_ and str(cmd.from_), "date": cmd.date_sent}
        )
        try:
            async with self._limit(account.account_sid):
                page = await self.twilio.list_messages(
                    creds,
                    to=str(cmd.to) if cmd.to else None,
                    from_=str(cmd.from_) if cmd.from_ else None,
                    date_sent=cmd.date_sent,
                    page_size=cmd.limit,
                    page_uri=page_uri,
                )
        except TwilioError as err:
            await self._audit_view(ctx, "list", account, summary, outcome="error", error=err)
            raise
        if cmd.scheduled_only:
            page = MessagePage(
                tuple(m for m in page.messages if m.status == "scheduled"),
                page.next_page_uri,
                page.page,
                page.page_size,
            )
        await self._audit_view(ctx, "list", account, summary + f" results={len(page.messages)}", outcome="ok")
        return page, account

    async def _by_sid(
        self, ctx: Context, cmd: FetchCommand | CancelCommand | DeleteCommand
    ) -> tuple[Message | None, StoredAccount]:
        account, creds = await self.resolve(ctx, cmd.account)
        operation = cmd.subcommand
        try:
            async with self._limit(account.account_sid):
                if isinstance(cmd, CancelCommand):
                    result: Message | None = await self.twilio.cancel(creds, cmd.sid)
                elif isinstance(cmd, DeleteCommand):
                    await self.twilio.delete(creds, cmd.sid)
                    result = None
                else:
                    result = await self.twilio.fetch(creds, cmd.sid)
        except TwilioError as err:
            await self._audit_view(
                ctx, operation, account, f"sid={cmd.sid}", outcome="error", message_sid=cmd.sid, error=err
            )
            raise
        if not isinstance(cmd, FetchCommand):  # reads of one message are not worth a log line each
            await self._audit_view(
                ctx, operation, account, f"sid={cmd.sid}", outcome="ok", message_sid=cmd.sid
            )
        return result, account

    async def fetch(self, ctx: Context, cmd: FetchCommand) -> tuple[Message, StoredAccount]:
        """The current state of one message."""
        message, account = await self._by_sid(ctx, cmd)
        assert message is not None
        return message, account

    async def cancel(self, ctx: Context, cmd: CancelCommand) -> tuple[Message, StoredAccount]:
        """Cancel a scheduled message."""
        message, account = await self._by_sid(ctx, cmd)
        assert message is not None
        return message, account

    async def delete(self, ctx: Context, cmd: DeleteCommand) -> StoredAccount:
        """Delete a message's record from Twilio."""
        _, account = await self._by_sid(ctx, cmd)
        return account

    async def card_posted(self, key: str) -> None:
        """The user has seen the outcome of the create claimed under `key`: start-up recovery leaves it be."""
        await self._record(key, lambda: self.outbox.mark_card_posted(key))

    async def reconcile(self, entry: OutboxEntry, *, skew: timedelta = CLOCK_SKEW) -> Message | None:
        """Settle a create left pending (or unknown) by a process that died mid-call. Never re-sends.

        Looks for the message at Twilio (same To and body, created after the row, minus clock skew); records
        its SID when found, or marks the row `unknown` when not. Raises TwilioError when Twilio cannot be
        asked, leaving the row as it was for the next try.
        """
        message, _ = await self._reconcile(entry, skew=skew)
        return message

    async def _reconcile(
        self, entry: OutboxEntry, *, skew: timedelta = CLOCK_SKEW
    ) -> tuple[Message | None, bool]:
        """`reconcile`, also saying whether the account is gone (so nobody can look)."""
        found = await self.credentials(entry.team_id, entry.account_label)
        if found is None or found[0].account_sid != entry.account_sid:
            await self.outbox.settle(entry.key, Settlement("unknown", error_message=ACCOUNT_GONE))
            return None, True
        _, creds = found
        match = await self._look_up(creds, entry.key, entry.request, since=entry.created_at - skew)
        if match is not None:
            await self.outbox.settle(entry.key, Settlement("sent", message_sid=match.sid))
        else:
            await self.outbox.settle(
                entry.key,
                Settlement(
                    "unknown",
                    error_message="the bot stopped mid-call and Twilio has no matching message; not re-sent",
                ),
            )
        return match, False

    async def recover(self, post: Callable[[Unposted], Awaitable[bool]]) -> int:
        """Settle the creates a stopped process left without a card and have `post` show each; never re-sends.

        `post` returns False when it could not show the card now; the row is then left for the next start,
        as it is when Twilio cannot be asked. Rows another live process (a replica) is still working on are
        left to it: their keys are leased. Returns how many were settled and shown.

        On PostgreSQL, rows claimed without an owner get a lease that has already run out, and then
        the rows of every replica whose lease ran out are taken over (`take_over`).
        """
        if self.leases is not None:
            await self.outbox.expire_unowned(self.leases.owner)
            return await self.take_over(post)
        done = 0
        for entry in await self.outbox.unposted():
            lease = self.inflight.try_acquire(entry.key)
            if lease is None:
                continue
            try:
                current = await self.outbox.get(entry.key)  # as it is now that nobody else can change it
                if current is not None and not current.card_posted:
                    done += await self._settle_and_show(current, post)
            finally:
                lease.release()
        if done:
            log.info("recovered %d unfinished operation(s) from before the restart", done)
        self.inflight.sweep()
        return done

    async def take_over(self, post: Callable[[Unposted], Awaitable[bool]], *, limit: int = 100) -> int:
        """PostgreSQL: take the rows whose lease ran out (a replica died), settle them, post their cards.

        Never re-sends: a pending row is looked up at Twilio as start-up recovery does. A row that
        could not be settled or shown now stays leased to this replica and is taken again (by any
        replica) once that lease runs out. Returns how many were settled and shown.
        """
        leases = self.leases
        if leases is None:
            return 0
        taken = await self.outbox.take_stale(leases.owner, limit=limit, lease_seconds=leases.lease_seconds)
        done = 0
        for entry in taken:
            if entry.key in leases.held():
                continue  # its outcome waits in memory for the database (the lease ran out meanwhile)
            lock = self.inflight.try_acquire(entry.key)
            if lock is None:
                continue  # this process still works on it (its lease ran out during an outage)
            leases.hold(entry.key)
            try:
                done += await self._settle_and_show(entry, post)
            finally:
                lock.release()
                leases.let_go(entry.key)
        if done:
            log.info("took over %d operation(s) a stopped replica left unfinished", done)
        return done

    async def _settle_and_show(self, entry: OutboxEntry, post: Callable[[Unposted], Awaitable[bool]]) -> int:
        """Settle a row left without a card, have `post` show it and mark it posted: 1 when all was done.

        0 when the card could not be shown now or Twilio could not be asked: the row is left as it is
        for the next try.
        """
        try:
            unposted = await self._unposted(entry)
            if unposted is not None and not await post(unposted):
                return 0
            await self.card_posted(entry.key)
            return 1
        except TwilioError as err:
            log.warning("could not settle outbox row %s yet: %s", entry.id, err.code or type(err).__name__)
            return 0

    async def tend_leases(self, post: Callable[[Unposted], Awaitable[bool]], *, take: bool = True) -> int:
        """One round of the PostgreSQL heartbeat: write what waited for the database, renew this
        replica's leases, and (when `take`) take over rows of replicas that died. Returns rows taken.

        Raises DatabaseUnavailable when the database does not answer; the next round tries again.
        """
        if self.leases is None:
            return 0
        await self.leases.flush()
        await self.leases.renew()
        return await self.take_over(post) if take else 0

    async def _unposted(self, entry: OutboxEntry) -> Unposted | None:
        """What the card of a row without one should say now; None when there is nothing to tell."""
        message: Message | None = None
        gone = False
        if entry.state in {"pending", "unknown"}:
            message, gone = await self._reconcile(entry)
        elif entry.state == "sent" and entry.message_sid:
            found = await self.credentials(entry.team_id, entry.account_label)
            if found is not None:
                message = await self.twilio.fetch(found[1], entry.message_sid)
        if message is None and entry.state not in {"pending", "unknown"}:
            return None  # failed (its error was shown), or sent on an account since removed
        return Unposted(
            team_id=entry.team_id,
            user_id=entry.user_id,
            channel_id=entry.channel_id or None,
            response_url=entry.response_url,
            operation="send" if entry.operation == "send" else "schedule",
            account_label=entry.account_label or "default",
            to=str(entry.request.get("to") or ""),
            body=str(entry.request.get("body") or ""),
            message=message,
            account_gone=gone,
            key=entry.key,
            created_at=entry.created_at,
        )


def _send_at(request: Mapping[str, object]) -> datetime | None:
    text = request.get("send_at")
    return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z") if text else None
