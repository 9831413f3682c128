"""Local stand-ins for the services the bot talks to: real HTTP servers on loopback.

`bot.sandbox.twilio` simulates Twilio's Messages API and `bot.sandbox.slack` the Slack Web API. The
playground, the end-to-end tests and the benchmarks point the bot at them instead of the internet.
"""
