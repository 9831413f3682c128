"""A create the bot cannot write down is not accepted: the user hears so, and nothing is sent."""

from __future__ import annotations

from harness import Stack

TO = "+15551230003"


async def test_a_command_the_database_cannot_record_is_refused_in_words(stack: Stack) -> None:
    """With the journal unwritable the ack says the database is not answering; no Twilio call, no card."""
    await stack.runtime.db.execute("DROP TABLE journal")  # every write to it now fails in SQLite itself
    ack = await stack.command(f"send {TO} never accepted")
    assert "The bot's database is not answering; nothing was sent." in ack.body
    assert "Working on it" not in ack.body
    assert stack.twilio.creates() == [] and stack.cards() == []


async def test_a_form_the_database_cannot_record_stays_open_with_the_sentence(stack: Stack) -> None:
    """A send form whose request cannot be written down stays open and says why; nothing is sent."""
    await stack.command("send")
    view = stack.opened_view()
    await stack.runtime.db.execute("DROP TABLE journal")
    await stack.submit(view["id"], {"to": TO, "body": "never accepted"})
    assert view["id"] in stack.slack.views
    errors = stack.slack.view_errors[view["id"]]
    assert "The bot's database is not answering; nothing was sent." in errors.values()
    assert stack.twilio.creates() == [] and stack.cards() == []
