"""Load and latency benchmarks for the bot (`python -m benchmarks`, `make bench`); not part of the tests.

The bot runs as `python -m bot serve` in its own process with a real SQLite file; the Slack and Twilio
simulators, a minimal Bolt app (the framework's floor) and a bare aiohttp handler (the load generator's
ceiling) each run in their own process too, so no two of them share an event loop. Load comes from wrk
with a Lua script cycling through requests signed beforehand, or from a Python generator when wrk is
missing. See `benchmarks/runner.py` for what is measured and the targets.

Modules: `payloads` (signed slash commands, pure), `stats` (percentiles, pure), `servers` (the helper
processes), `load` (wrk and the Python generator), `runner` (the runs, the table and the JSON).
"""
