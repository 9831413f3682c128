"""One frozen Settings object read from the environment (and a `.env` file), failing fast by name."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable and says how to fix it."""


_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment. Secrets are kept out of repr()."""

    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    # Both set: OAuth mode (many workspaces install through /slack/install); unset: SLACK_BOT_TOKEN.
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    twilio_api_url: str = "https://api.twilio.com"
    database_path: Path = Path("./data/bot.db")
    # A postgresql:// URL selects PostgreSQL (replicas may share it); None keeps SQLite at database_path.
    database_url: str | None = field(default=None, repr=False)
    database_pool_size: int = 10
    # PostgreSQL only: how long a replica's claim on a create lasts without renewal, and how often each
    # replica renews its own and looks for claims of replicas that died.
    outbox_lease_seconds: float = 120.0
    reconcile_interval: float = 5.0
    secret_key: str | None = field(default=None, repr=False)
    admin_user_ids: frozenset[str] = frozenset()
    host: str = "0.0.0.0"
    port: int = 3000
    log_level: str = "INFO"
    log_format: str = "console"
    default_region: str = "US"
    twilio_concurrency: int = 50
    twilio_timeout: float = 10.0
    # Seconds of the first retry's backoff (doubling, with jitter); tests make it small.
    twilio_backoff_base: float = 0.5
    # On SIGTERM: how long operations already running may take before they are cancelled.
    shutdown_timeout: float = 25.0
    # At start-up, an accepted command that never reached Twilio runs if it is younger than this (seconds);
    # an older one is reported as not sent.
    recovery_max_age: float = 600.0
    loop_monitor: bool = False
    # WORKER_PROCESS=1: `serve` only writes accepted sends and schedules down and acknowledges them;
    # `python -m bot work` processes run them (the work after the ack then uses other cores).
    worker_process: bool = False
    # The bot's public base URL (no trailing slash): creates carry StatusCallback on it and Twilio's
    # webhook signatures are checked against it. None: no status callbacks.
    public_url: str | None = None
    # The least time between two updates of one card by status callbacks (Slack allows ~50 a minute).
    status_update_interval: float = 2.0
    # A conversation with no text for this many days is over: the next text opens a new thread.
    conversation_idle_days: int = 7

    @property
    def oauth_mode(self) -> bool:
        """True when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set: serve every workspace that installs."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def database_target(self) -> str | Path:
        """What `Database.connect` opens: the PostgreSQL URL, or the SQLite path."""
        return self.database_url or self.database_path

    @property
    def engine(self) -> str:
        """ "postgresql" when DATABASE_URL is set, else "sqlite"."""
        return "postgresql" if self.database_url else "sqlite"

    def require(self, *names: str, mode: str) -> None:
        """Fail with a sentence naming the first missing variable that `mode` needs."""
        for name in names:
            if not getattr(self, name.lower()):
                raise SettingsError(
                    f"{name} is not set, and `{mode}` needs it. Set it in the environment or in .env "
                    "(see README: 'Set up the Slack app')."
                )


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _url(name: str, value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise SettingsError(f"{name} must be an http(s) URL such as https://slack.com/api/, not {value!r}.")
    return value


def _seconds(
    name: str, text: str, low: float, high: float, *, above_low: bool = False, note: str = ""
) -> float:
    """`text` as seconds from `low` (or, `above_low`, above it) to `high`; `note` glosses the range."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    span = f"above {low:g} and at most {high:g}" if above_low else f"from {low:g} to {high:g}"
    in_range = (low < value if above_low else low <= value) and value <= high
    if not in_range:
        raise SettingsError(f"{name} must be a number of seconds {span}{note}, not {text!r}.")
    return value


def _flag(name: str, text: str | None) -> bool:
    """`text` as on (1, true) or off (0, false, unset)."""
    value = (text or "0").lower()
    if value not in {"0", "1", "true", "false"}:
        raise SettingsError(f"{name} must be 1 (on) or 0 (off), not {value!r}.")
    return value in {"1", "true"}


def _whole(name: str, text: str, low: int, high: int) -> int:
    """`text` as a whole number from `low` to `high`."""
    if not text.isdigit() or not low <= int(text) <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {text!r}.")
    return int(text)


def _public_url(value: str) -> str:
    parsed = urlsplit(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc or parsed.query or parsed.fragment:
        raise SettingsError(
            "PUBLIC_URL must be the bot's public base URL, such as https://bridge.example.com "
            f"(http or https, no query), not {value!r}."
        )
    try:
        parsed.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise SettingsError(f"PUBLIC_URL has a port that is not a number: {value!r}.") from None
    return value.rstrip("/")


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")) -> Settings:
    """Build Settings from `env` (default: os.environ over a `.env` file). Raises SettingsError."""
    merged: dict[str, str] = {}
    if dotenv is not None and env is None:
        merged.update(_read_dotenv(dotenv))
    merged.update(os.environ if env is None else env)

    def get(name: str) -> str | None:
        value = merged.get(name, "").strip()
        return value or None

    port = _whole("PORT", get("PORT") or "3000", 0, 65535)
    level = (get("LOG_LEVEL") or "INFO").upper()
    if level not in _LEVELS:
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(sorted(_LEVELS))}, not {level!r}.")
    fmt = (get("LOG_FORMAT") or "console").lower()
    if fmt not in {"console", "json"}:
        raise SettingsError(f"LOG_FORMAT must be 'console' or 'json', not {fmt!r}.")
    admins = frozenset(x.strip() for x in (get("ADMIN_USER_IDS") or "").split(",") if x.strip())
    for user in admins:
        if not _USER_ID.match(user):
            raise SettingsError(
                f"ADMIN_USER_IDS has {user!r}, which is not a Slack user ID (like U012AB3CD); "
                "separate IDs with commas."
            )
    bot_token = get("SLACK_BOT_TOKEN")
    if bot_token and not bot_token.startswith("xoxb-"):
        raise SettingsError(
            "SLACK_BOT_TOKEN must be a bot token starting with xoxb- (OAuth & Permissions page)."
        )
    app_token = get("SLACK_APP_TOKEN")
    if app_token and not app_token.startswith("xapp-"):
        raise SettingsError(
            "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information page)."
        )
    region = (get("DEFAULT_REGION") or "US").upper()
    if not re.fullmatch(r"[A-Z]{2}", region):
        raise SettingsError(
            f"DEFAULT_REGION must be a two-letter country code such as US or GB, not {region!r}."
        )
    concurrency = _whole("TWILIO_CONCURRENCY", get("TWILIO_CONCURRENCY") or "50", 1, 1000)
    timeout = _seconds("TWILIO_TIMEOUT", get("TWILIO_TIMEOUT") or "10", 0, 120, above_low=True)
    shutdown_timeout = _seconds("SHUTDOWN_TIMEOUT", get("SHUTDOWN_TIMEOUT") or "25", 0, 600)
    recovery_max_age = _seconds(
        "RECOVERY_MAX_AGE", get("RECOVERY_MAX_AGE") or "600", 0, 86400, note=" (a day)"
    )

    loop_monitor = _flag("BOT_LOOP_MONITOR", get("BOT_LOOP_MONITOR"))
    worker_process = _flag("WORKER_PROCESS", get("WORKER_PROCESS"))

    database_url = get("DATABASE_URL")
    if database_url is not None and not database_url.startswith(("postgresql://", "postgres://")):
        raise SettingsError(
            "DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host/dbname "
            "(leave it unset to use SQLite at DATABASE_PATH)."
        )
    pool_size = _whole("DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE") or "10", 1, 200)
    lease_seconds = _seconds("OUTBOX_LEASE_SECONDS", get("OUTBOX_LEASE_SECONDS") or "120", 1, 3600)
    reconcile_interval = _seconds("RECONCILE_INTERVAL", get("RECONCILE_INTERVAL") or "5", 0.1, 600)
    if reconcile_interval * 2 > lease_seconds:
        raise SettingsError(
            "RECONCILE_INTERVAL must be at most half of OUTBOX_LEASE_SECONDS, so a live replica renews its "
            "claims before they run out."
        )
    client_id, client_secret = get("SLACK_CLIENT_ID"), get("SLACK_CLIENT_SECRET")
    if bool(client_id) != bool(client_secret):
        missing = "SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID"
        raise SettingsError(
            f"{missing} is not set: OAuth mode (many workspaces) needs both SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET (Basic Information page); unset both for one workspace with SLACK_BOT_TOKEN."
        )
    public_url = get("PUBLIC_URL")
    if public_url is not None:
        public_url = _public_url(public_url)
    idle_days = _whole("CONVERSATION_IDLE_DAYS", get("CONVERSATION_IDLE_DAYS") or "7", 1, 365)

    slack_api_url = _url("SLACK_API_URL", get("SLACK_API_URL") or "https://slack.com/api/")
    if not slack_api_url.endswith("/"):
        slack_api_url += "/"
    return Settings(
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_bot_token=bot_token,
        slack_app_token=app_token,
        slack_client_id=client_id,
        slack_client_secret=client_secret,
        slack_api_url=slack_api_url,
        twilio_api_url=_url("TWILIO_API_URL", get("TWILIO_API_URL") or "https://api.twilio.com").rstrip("/"),
        database_path=Path(get("DATABASE_PATH") or "./data/bot.db"),
        database_url=database_url,
        database_pool_size=pool_size,
        outbox_lease_seconds=lease_seconds,
        reconcile_interval=reconcile_interval,
        secret_key=get("SECRET_KEY"),
        admin_user_ids=admins,
        host=get("HOST") or "0.0.0.0",
        port=port,
        log_level=level,
        log_format=fmt,
        default_region=region,
        twilio_concurrency=concurrency,
        twilio_timeout=timeout,
        shutdown_timeout=shutdown_timeout,
        recovery_max_age=recovery_max_age,
        loop_monitor=loop_monitor,
        worker_process=worker_process,
        public_url=public_url,
        conversation_idle_days=idle_days,
    )
