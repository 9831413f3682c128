"""The playground in headless Chromium, started the way the README says: `python -m bot playground`.

One walk through the page as a person would take it: slash commands with completion, every Twilio
form (send, schedule, list, fetch, cancel, delete, setup) and inline field errors, the card buttons
(Refresh, Cancel and Delete with their confirm dialogs, Next page, Edit and try again), ephemeral
answers, text that must show literally, the private channel the bot is not in (its card not live), a
card that turns delivered by itself, and a member who may not run setup.
The page must log no errors and the Slack simulator must have seen nothing real Slack would refuse.

Without Chromium or the playwright package the test skips and says why, except in CI (`CI=true`).
Screenshots go to tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from waiting import until_sync

from bot.playground import SECOND_ACCOUNT_SID
from bot.sandbox.twilio import SANDBOX_ACCOUNT_SID
from storage.accounts import mask_sid

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path(
    os.environ.get("CHROMIUM_PATH")
    or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
    or "/usr/bin/chromium"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_SECONDS = 30.0
UI_TIMEOUT_MS = 10_000  # the simulated Twilio delivers 3 s after sending; everything else is quicker

GENERAL, PRIVATE = "C0GENERAL", "C0PRIVATE"
TO = "+15551234567"
SID = re.compile(r"\b(?:SM|MM)[0-9a-f]{32}\b")

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, but fail in CI: there the browser test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Playground:
    """A running `python -m bot playground` and what it printed."""

    proc: subprocess.Popen[str]
    banner: str
    stderr_path: Path

    def _find(self, pattern: str) -> str:
        match = re.search(pattern, self.banner)
        assert match, f"the playground's banner has no {pattern!r}:\n{self.banner}"
        return match.group(1)

    @property
    def page_url(self) -> str:
        return self._find(r"Playground ready: open (http://\S+/) in a browser")

    @property
    def phone_url(self) -> str:
        return self._find(r"phone +(http://\S+/)")

    @property
    def twilio_url(self) -> str:
        return self._find(r"Twilio\s+(http://\S+)")

    @property
    def second_account(self) -> tuple[str, str, str, str]:
        """Account SID, Auth Token, From and Messaging Service of the account left for /twilio setup."""
        sid = self._find(r"Account SID (AC[0-9a-f]{32})")
        token = self._find(r"Auth Token ([0-9a-f]{32})")
        from_, service = re.findall(r"From (\+\d+)\s+Messaging Service (MG[0-9a-f]{32})", self.banner)[-1]
        return sid, token, from_, service

    def stop(self) -> tuple[int, str, str]:
        """Ctrl-C, as a person stops it; returns the exit code, the rest of stdout, and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rest, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        return self.proc.returncode, rest or "", self.stderr_path.read_text(encoding="utf-8")

    def stop_cleanly(self) -> str:
        """Stop it as `stop` does; it must exit 0 and log no traceback or error. Returns its stderr."""
        code, _, stderr = self.stop()
        assert code == 0, stderr
        assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
        return stderr


def _start_playground(tmp_path: Path, *extra: str) -> Playground:
    stderr_path = tmp_path / "playground.stderr"
    with stderr_path.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "playground",
                "--port",
                "0",
                "--db",
                str(tmp_path / "bot.db"),
                *extra,
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert proc.stdout is not None
    # Raw reads: a TextIOWrapper would buffer lines that select() then never reports.
    fd, out = proc.stdout.fileno(), b""
    deadline = time.monotonic() + START_SECONDS
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"Ctrl-C stops." not in out:
            left = deadline - time.monotonic()
            chunk = os.read(fd, 65536) if left > 0 and sel.select(timeout=left) else None
            if not chunk:
                proc.kill()
                proc.communicate()
                err = stderr_path.read_text(encoding="utf-8")
                pytest.fail(f"the playground did not start (exit {proc.returncode}):\n{out.decode()}\n{err}")
            out += chunk
    return Playground(proc, out.decode(), stderr_path)


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[Playground]:
    """`python -m bot playground --port 0 --db …` as a subprocess; killed if the test did not stop it."""
    yield from _playground(tmp_path)


@pytest.fixture
def oauth_playground(tmp_path: Path) -> Iterator[Playground]:
    """`python -m bot playground --oauth`: two workspaces, the bot installed in neither yet."""
    yield from _playground(tmp_path, "--oauth")


def _playground(tmp_path: Path, *extra: str) -> Iterator[Playground]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (set CHROMIUM_PATH)")
    pg = _start_playground(tmp_path, *extra)
    try:
        yield pg
    finally:
        if pg.proc.poll() is None:
            pg.proc.kill()
            pg.proc.communicate()


@dataclass
class Chromium:
    """A headless Chromium's browser context, and the errors logged by the pages it watches."""

    context: BrowserContext
    console_errors: list[str]

    def new_page(self, *, watch: bool = True) -> Page:
        """A tab with the UI timeout; a watched tab's console errors and uncaught exceptions are kept."""
        page = self.context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        if watch:
            page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        return page


@contextmanager
def chromium() -> Iterator[Chromium]:
    """Start headless Chromium at a laptop's window size in UTC, closed on the way out.

    Skips (fails in CI) if it does not start.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        except PlaywrightError as err:
            _unavailable(f"Chromium at {CHROMIUM} does not start: {err}")
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860}, timezone_id="UTC")
            yield Chromium(context, [])
        finally:
            browser.close()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - a loopback URL we started
        return json.load(resp)


def _post_json(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(  # noqa: S310 - a loopback URL we started
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
        return json.load(resp)


# ── acting on the page ─────────────────────────────────────────────────────────────────────────────


def run(page: Page, line: str) -> None:
    """Type a line into the composer and press Enter."""
    composer = page.locator("#composer")
    composer.fill(line)
    composer.press("Enter")


def new_card(page: Page, channel: str, text: str, before: set[str]) -> Locator:
    """The bot's channel message containing `text` that was not there `before`, pinned by its ts."""
    from playwright.sync_api import expect

    cards = page.locator(f'.message.from-bot:not(.ephemeral)[data-channel-id="{channel}"]', has_text=text)
    exclude = "".join(f':not([data-ts="{ts}"])' for ts in before)
    fresh = page.locator(
        f'.message.from-bot:not(.ephemeral)[data-channel-id="{channel}"]{exclude}', has_text=text
    )
    expect(fresh.first).to_be_visible()
    ts = fresh.first.get_attribute("data-ts")
    assert ts and cards.count() >= 1
    return page.locator(f'.message[data-ts="{ts}"]')


def card_ts(page: Page) -> set[str]:
    """The ts of every message on screen, to tell a new card from an old one."""
    return {ts for ts in page.locator(".message[data-ts]").evaluate_all("ns => ns.map(n => n.dataset.ts)")}


def click_and_wait_update(card: Locator, action_id: str, *, confirm: bool = False) -> None:
    """Click a card's button (OK-ing its confirm dialog) and wait until the bot has edited the card."""
    from playwright.sync_api import expect

    page = card.page
    before = card.get_attribute("data-edited")
    assert before is not None, "the page marks every message with data-edited"
    card.locator(f'button.sk-button[data-action-id="{action_id}"]').click()
    if confirm:
        dialog = page.locator(".confirm-dialog")
        expect(dialog).to_be_visible()
        dialog.locator(".confirm-ok").click()
        expect(dialog).to_have_count(0)
    expect(card).not_to_have_attribute("data-edited", before)


def open_modal(page: Page, line: str, callback_id: str) -> Locator:
    """Run a command that opens a form; the form."""
    from playwright.sync_api import expect

    run(page, line)
    modal = page.locator(f'.modal[data-callback-id="{callback_id}"]')
    expect(modal).to_be_visible()
    return modal


def field(modal: Locator, block_id: str) -> Locator:
    """The form control of one input block."""
    return modal.locator(f'[data-block-id="{block_id}"][data-action-id]')


def submit_and_close(page: Page, modal: Locator) -> None:
    """Press the form's submit button and wait for the form to go away."""
    from playwright.sync_api import expect

    modal.locator(".modal-submit").click()
    expect(page.locator(".modal")).to_have_count(0)


# ── the walk ───────────────────────────────────────────────────────────────────────────────────────


def test_a_person_can_use_every_feature_of_the_playground(playground: Playground) -> None:
    """Commands, forms, buttons, ephemerals, the private channel and the member's refusal all work."""
    with chromium() as browser:
        _walk(browser.new_page(), playground)

    state = _get_json(playground.page_url + "ui/state")
    stderr = playground.stop_cleanly()
    assert browser.console_errors == []
    assert state["problems"] == [], "the Slack simulator saw what real Slack would refuse"
    assert "Playground stopped." in stderr


def _walk(page: Page, pg: Playground) -> None:
    from playwright.sync_api import expect

    page.goto(pg.page_url)
    expect(page.locator("#connection")).to_have_text(re.compile("live"))
    composer = page.locator("#composer")

    # Completion: subcommands with their usage, Tab completes.
    composer.fill("/twilio sc")
    expect(page.locator("#completions .completion[data-value='schedule']")).to_be_visible()
    composer.press("Tab")
    expect(composer).to_have_value("/twilio schedule ")
    expect(page.locator("#usage-hint")).to_contain_text("/twilio schedule TO WHEN BODY")
    composer.fill("")

    # (a) A slash command: the card in the channel, and the ack's "Working on it…" note gone with it.
    before = card_ts(page)
    run(page, f"/twilio send {TO} hello")
    sent = new_card(page, GENERAL, "Message sent", before)
    expect(page.locator(".message.ephemeral", has_text="Working on it")).to_have_count(0)
    expect(sent).to_contain_text(TO)
    expect(sent).to_contain_text("hello")
    expect(sent.locator(".slack-date").first).to_have_text(re.compile(r"\d:\d\d"))  # <!date^…> as a time
    sent_sid = SID.search(sent.inner_text())
    assert sent_sid
    posted_as = sent.get_attribute("data-edited")

    # The private channel the bot is not in: the card comes through response_url; text stays literal.
    page.locator(f'.channel-link[data-channel-id="{PRIVATE}"]').click()
    expect(page.locator("#channel-title")).to_contain_text("private-team")
    before = card_ts(page)
    run(page, f"/twilio send {TO} <!channel> & <b>hi</b>")
    private = new_card(page, PRIVATE, "Message sent", before)
    expect(private).to_contain_text("<!channel> & <b>hi</b>")
    expect(private.locator(".mention.broadcast")).to_have_count(0)
    expect(private).to_contain_text("/invite")
    expect(private).to_contain_text("not live")
    private_sid = SID.search(private.inner_text())
    assert private_sid
    page.locator(f'.channel-link[data-channel-id="{GENERAL}"]').click()

    # Live status: the playground's PUBLIC_URL is the bot, so Twilio's callbacks redraw the card in
    # place, queued → sent → delivered (3 s after sending), without anyone clicking. (The private
    # text, sent just after, has left by then too: the list below finds both.)
    expect(sent).to_contain_text("delivered")
    expect(sent).to_contain_text("Status updated")
    assert sent.get_attribute("data-edited") != posted_as
    assert SID.search(sent.inner_text()) and SID.search(sent.inner_text()).group(0) == sent_sid.group(0)

    # (c) The schedule form: a bad number is flagged on its field; fixed, the card arrives.
    modal = open_modal(page, "/twilio schedule", "twilio_schedule")
    expect(field(modal, "send_at")).not_to_have_value("")
    when = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    field(modal, "send_at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    field(modal, "to").fill("12")
    field(modal, "body").fill("Stand-up moved\nto 3 pm")
    modal.locator(".modal-submit").click()
    error = modal.locator('.input-block[data-block-id="to"] .field-error:not([hidden])')
    expect(error).to_contain_text("12")
    page.screenshot(path=str(ARTIFACTS / "playground-modal-schedule.png"))
    field(modal, "to").fill(TO)
    before = card_ts(page)
    submit_and_close(page, modal)
    scheduled = new_card(page, GENERAL, "Message scheduled", before)
    expect(scheduled).to_contain_text("Stand-up moved")
    scheduled_sid = SID.search(scheduled.inner_text())
    assert scheduled_sid

    # (d) Cancel, through its confirm dialog.
    click_and_wait_update(scheduled, "cancel_message", confirm=True)
    expect(scheduled).to_contain_text("canceled")

    # (b) Refresh still works on a live card: it asks Twilio again (delivered by now).
    def refreshed_to_delivered() -> bool:
        click_and_wait_update(sent, "refresh_message")
        return "delivered" in sent.inner_text()

    until_sync(refreshed_to_delivered, timeout=UI_TIMEOUT_MS / 1000, what="Refresh to show 'delivered'")

    # The list form, reached the way a person would after a failed list: Edit and try again.
    _post_json(
        pg.twilio_url + "/_sim/faults",
        {"kind": "status", "status": 400, "method": "GET", "path_contains": "/Messages.json"},
    )
    run(page, "/twilio list")
    failed = page.locator(".message.ephemeral", has_text="could not list")
    expect(failed).to_be_visible()
    expect(failed.locator("a[href^='https://www.twilio.com/docs/errors/']")).to_be_visible()
    failed.locator("button.sk-button[data-action-id='reopen_modal']").click()
    modal = page.locator('.modal[data-callback-id="twilio_list"]')
    expect(modal).to_be_visible()
    field(modal, "date").fill(datetime.now(UTC).strftime("%Y-%m-%d"))
    field(modal, "limit").fill("1")
    before = card_ts(page)
    submit_and_close(page, modal)
    listing = new_card(page, GENERAL, "Messages", before)
    first_page = SID.findall(listing.inner_text())
    assert len(first_page) == 1
    click_and_wait_update(listing, "list_next_page")
    second_page = SID.findall(listing.inner_text())
    assert len(second_page) == 1 and second_page != first_page
    assert {*first_page, *second_page} == {sent_sid.group(), private_sid.group()}

    # The fetch form.
    modal = open_modal(page, "/twilio fetch", "twilio_fetch")
    field(modal, "sid").fill(private_sid.group())
    before = card_ts(page)
    submit_and_close(page, modal)
    expect(new_card(page, GENERAL, private_sid.group(), before)).to_contain_text("<!channel>")

    # Delete from the card, through its confirm dialog, and from the delete form.
    click_and_wait_update(sent, "delete_message", confirm=True)
    expect(sent).to_contain_text("deleted")
    modal = open_modal(page, "/twilio delete", "twilio_delete")
    field(modal, "sid").fill(scheduled_sid.group())
    before = card_ts(page)
    submit_and_close(page, modal)
    expect(new_card(page, GENERAL, "Message deleted", before)).to_contain_text(scheduled_sid.group())

    # Schedule by slash command, cancel with the cancel form.
    before = card_ts(page)
    run(page, f"/twilio schedule {TO} in 1h Reminder: *bring* the & signs")
    reminder = new_card(page, GENERAL, "Message scheduled", before)
    expect(reminder).to_contain_text("Reminder: *bring* the & signs")  # the body as the SMS shows it
    reminder_sid = SID.search(reminder.inner_text())
    assert reminder_sid
    modal = open_modal(page, "/twilio cancel", "twilio_cancel")
    field(modal, "sid").fill(reminder_sid.group())
    before = card_ts(page)
    submit_and_close(page, modal)
    expect(new_card(page, GENERAL, "Message canceled", before)).to_contain_text(reminder_sid.group())

    # Setup (admins): add the simulator's second account; then the send form offers a choice of account.
    sid, token, from_, service = pg.second_account
    modal = open_modal(page, "/twilio setup", "twilio_setup")
    field(modal, "label").fill("second")
    field(modal, "account_sid").fill(sid)
    field(modal, "auth_token").fill(token)
    field(modal, "default_from").fill(from_)
    field(modal, "default_service").fill(service)
    submit_and_close(page, modal)
    expect(page.locator(".message.ephemeral", has_text="Twilio accounts")).to_contain_text("second")

    modal = open_modal(page, "/twilio send", "twilio_send")
    field(modal, "account").select_option("second")
    field(modal, "to").fill("555")
    field(modal, "body").fill("From the form\nwith two lines")
    modal.locator(".modal-submit").click()
    expect(modal.locator('.input-block[data-block-id="to"] .field-error:not([hidden])')).to_be_visible()
    field(modal, "to").fill(TO)
    page.screenshot(path=str(ARTIFACTS / "playground-modal-send.png"))
    before = card_ts(page)
    submit_and_close(page, modal)
    from_form = new_card(page, GENERAL, "Message sent", before)
    expect(from_form).to_contain_text(from_)
    expect(from_form).to_contain_text("second")

    # (e) A member may not set up accounts: the refusal only they see, and no form.
    page.select_option("#user-switch", "U0MEMBER")
    run(page, "/twilio setup")
    expect(page.locator(".message.ephemeral", has_text="Only workspace admins")).to_be_visible()
    expect(page.locator(".modal")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "playground-channel.png"))


OPS = "C0OPSROOM"
OUR_NUMBER = "+15557654321"


def test_a_conversation_between_the_phone_panel_and_a_thread(playground: Playground) -> None:
    """Text in from the phone, reply from the thread, a note kept inside, STOP holds, START resumes."""
    from playwright.sync_api import expect

    with chromium() as browser:
        slack, phone = browser.new_page(), browser.new_page()
        slack.goto(playground.page_url)
        run(slack, f"/twilio route {OUR_NUMBER} {OPS}")
        expect(slack.locator(".message.from-bot", has_text="open threads")).to_be_visible()

        phone.goto(playground.phone_url)
        text_from_phone(phone, "Hello, is my parcel coming?")
        slack.locator(f'button.channel-link[data-channel-id="{OPS}"]').click()
        root = slack.locator(".message.from-bot", has_text="Texts from")
        expect(root).to_be_visible()
        expect(root.locator(".thread-reply", has_text="Hello, is my parcel coming?")).to_be_visible()

        reply_in_thread(slack, root, "Yes, it arrives tomorrow.")
        expect(phone.locator(".bubble.received", has_text="Yes, it arrives tomorrow.")).to_be_visible()
        reply_in_thread(slack, root, "// VIP customer, be kind")
        text_from_phone(phone, "STOP")
        expect(root.locator(".thread-reply", has_text="texted STOP")).to_be_visible()
        reply_in_thread(slack, root, "Are you there?")
        expect(root.locator(".thread-reply", has_text="Held, not sent")).to_be_visible()
        text_from_phone(phone, "START")
        expect(root.locator(".thread-reply", has_text="texted START")).to_be_visible()
        reply_in_thread(slack, root, "Welcome back!")
        expect(phone.locator(".bubble.received", has_text="Welcome back!")).to_be_visible()
        phone.screenshot(path=str(ARTIFACTS / "phone.png"))
        slack.screenshot(path=str(ARTIFACTS / "thread.png"))
        team_texts = [
            t for t in phone.locator(".bubble.received").all_inner_texts() if "unsubscribed" not in t
            and "resubscribed" not in t
        ]  # fmt: skip
        assert not any("VIP" in t or "Are you there" in t for t in team_texts), team_texts
    playground.stop_cleanly()
    assert browser.console_errors == []


def text_from_phone(phone: Page, body: str) -> None:
    """Type a text on the phone page and send it; wait until it shows as sent."""
    from playwright.sync_api import expect

    phone.locator("#body").fill(body)
    phone.locator("#send-button").click()
    expect(phone.locator(".bubble.sent", has_text=body).last).to_be_visible()


def reply_in_thread(slack: Page, root: Locator, text: str) -> None:
    """Reply in the root card's thread from the composer; wait until the reply shows in the thread."""
    from playwright.sync_api import expect

    root.locator("button.reply-in-thread").first.click()
    run(slack, text)
    expect(root.locator(".thread-reply", has_text=text).first).to_be_visible()


def test_two_workspaces_each_show_their_own_home_tab(oauth_playground: Playground) -> None:
    """Install in both workspaces from the browser; each admin's Home shows its own account and works."""
    from playwright.sync_api import expect

    pg = oauth_playground
    bot_url = pg._find(r"Open (http://127\.0\.0\.1:\d+)/slack/install")
    teams = _get_json(pg.page_url + "ui/state")["teams"]
    assert len(teams) == 2
    sandbox, second = mask_sid(SANDBOX_ACCOUNT_SID), mask_sid(SECOND_ACCOUNT_SID)
    with chromium() as browser:
        # The bot's install page is Bolt's, which shows Slack's button image from the internet: that
        # request is refused here, in a tab of its own, so only the playground page's console counts.
        browser.context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
        installer = browser.new_page(watch=False)
        for team in teams:
            installer.goto(f"{bot_url}/slack/install")
            installer.locator('a[href*="oauth/v2/authorize"]').first.click()
            installer.get_by_role("link", name=f"Allow in {team['name']} ({team['id']})").click()
            expect(installer.locator("body")).to_contain_text("/twilio setup")

        page = browser.new_page()
        page.goto(pg.page_url)
        expect(page.locator("#team-switch-wrap")).to_be_visible()
        page.locator("#home-link").click()
        first_home = page.locator(f'.home-view[data-team-id="{teams[0]["id"]}"][data-view-id]')
        expect(first_home).to_contain_text(sandbox)
        expect(first_home).not_to_contain_text(second)
        page.screenshot(path=str(ARTIFACTS / "home-first.png"))

        page.select_option("#team-switch", teams[1]["id"])
        expect(page.locator("#user-switch")).to_have_value(teams[1]["admin_id"])
        second_home = page.locator(f'.home-view[data-team-id="{teams[1]["id"]}"][data-view-id]')
        expect(second_home).to_contain_text(second)
        expect(second_home).not_to_contain_text(sandbox)
        page.screenshot(path=str(ARTIFACTS / "home-second.png"))
        # The Home's set-up button reaches the bot as a click in Slack does: the form opens.
        second_home.locator('button.sk-button[data-action-id="home_setup"]').click()
        modal = page.locator('.modal[data-callback-id="twilio_setup"]')
        expect(modal).to_be_visible()
        modal.locator(".modal-close").click()
        expect(page.locator(".modal")).to_have_count(0)

        page.select_option("#team-switch", teams[0]["id"])
        expect(first_home).to_contain_text(sandbox)
        page.locator(f'button.channel-link[data-channel-id="{GENERAL}"]').click()
        expect(page.locator(".home-view")).to_have_count(0)
        expect(page.locator("#composer")).to_be_visible()
    state = _get_json(pg.page_url + "ui/state")
    pg.stop_cleanly()
    assert {h["team_id"] for h in state["home_views"]} == {t["id"] for t in teams}
    assert browser.console_errors == []
    assert state["problems"] == [], "the Slack simulator saw what real Slack would refuse"
