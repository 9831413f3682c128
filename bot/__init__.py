"""Slack ↔ Twilio chat-ops bot: run Twilio's Messages API from Slack."""

__version__ = "0.1.0"
