"""`python -m bot serve | socket | playground | accounts … | installs … | rotate-key`."""

from __future__ import annotations

import sys

from bot._bootstrap import ensure_installed

USAGE = """usage: python -m bot COMMAND [options]

commands:
  playground            the whole bot on this machine, with simulated Slack and Twilio (no accounts needed);
                        --oauth: OAuth mode, two simulated workspaces that install it
  serve                 the bot over HTTP for a Slack app (POST /slack/events, GET /healthz)
  socket                the bot over Slack's Socket Mode (needs SLACK_APP_TOKEN)
  work                  a worker process: runs the sends and schedules that `serve` wrote down when
                        WORKER_PROCESS=1 (health on HOST:PORT)
  accounts add|list|remove   manage a workspace's Twilio accounts (run with --help)
  installs list|remove  the workspaces that installed the app (OAuth mode; run with --help)
  rotate-key            re-encrypt stored secrets under the newest key in SECRET_KEY
  migrate-sqlite-to-postgres --from PATH   copy a SQLite database into the empty one at DATABASE_URL
"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the chosen mode; every failure is a sentence, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "playground":
        from bot.playground import main as playground

        return int(playground(rest))
    if command == "accounts":
        from bot.cli import main_accounts

        return int(main_accounts(rest))
    if command == "installs":
        from bot.cli import main_installs

        return int(main_installs(rest))
    if command == "rotate-key":
        from bot.cli import main_rotate_key

        return int(main_rotate_key(rest))
    if command == "migrate-sqlite-to-postgres":
        from bot.cli import main_migrate

        return int(main_migrate(rest))
    if command in {"serve", "socket", "work"}:
        return _serve(command)
    print(f"Unknown command {command!r}.\n\n{USAGE}", file=sys.stderr)
    return 2


def _serve(mode: str) -> int:
    import asyncio

    from bot import logs
    from bot.settings import SettingsError, load_settings
    from storage.crypto import KeyConfigError, WrongKeyError
    from storage.db import DatabaseUnavailable

    try:
        settings = load_settings()
        logs.configure(
            settings.log_level,
            settings.log_format,
            secrets=[
                s
                for s in (
                    settings.slack_signing_secret,
                    settings.slack_bot_token,
                    settings.slack_app_token,
                    settings.slack_client_secret,
                )
                if s
            ]
            + [k for k in (settings.secret_key or "").split(",") if k],
        )
        if mode == "serve":
            from bot.server import serve

            if settings.oauth_mode:
                settings.require("SLACK_SIGNING_SECRET", mode="serve in OAuth mode")
            else:
                settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", mode="serve")
            serve(settings)
        elif mode == "work":
            from bot.server import run_worker

            if settings.oauth_mode:
                settings.require("SLACK_SIGNING_SECRET", mode="work in OAuth mode")
            else:
                settings.require("SLACK_BOT_TOKEN", mode="work")
            asyncio.run(run_worker(settings))
        else:
            from bot.server import run_socket_mode

            if settings.oauth_mode:
                settings.require("SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", mode="socket in OAuth mode")
            else:
                settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", mode="socket")
            asyncio.run(run_socket_mode(settings))
    except SettingsError as err:
        print(f"Cannot start: {err}", file=sys.stderr)
        return 2
    except (KeyConfigError, WrongKeyError) as err:
        print(f"Cannot start: {err}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as err:
        print(f"Cannot start: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(
            f"Cannot start: {err.strerror or err} ({getattr(err, 'filename', '') or 'HOST/PORT'}).",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    ensure_installed()
    sys.exit(main())
