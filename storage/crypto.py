"""Secrets at rest: Twilio auth tokens and API secrets are stored only as Fernet tokens.

The keys come from `SECRET_KEY` (comma-separated Fernet keys, newest first, so an old key can stay
behind a new one while secrets are re-encrypted) or, without it, from a key file beside the database
that is generated once with mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["KeyConfigError", "SecretBox", "WrongKeyError"]

_HOW_TO_MAKE_A_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class KeyConfigError(Exception):
    """The encryption key setting or key file is unusable; the message says how to fix it."""


class WrongKeyError(Exception):
    """A stored secret cannot be decrypted with the configured key(s)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "The stored Twilio secret cannot be decrypted with the current SECRET_KEY; was the key "
            "changed? Put the old key after the new one in SECRET_KEY, comma-separated."
        )


def _parse_keys(text: str, *, source: str) -> list[Fernet]:
    """Turn comma-separated Fernet keys into Fernet objects, naming `source` (never the key) on error."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise KeyConfigError(f"{source} is empty. Make a key with: {_HOW_TO_MAKE_A_KEY}")
    fernets: list[Fernet] = []
    for position, part in enumerate(parts, start=1):
        if not part:
            raise KeyConfigError(
                f"{source} has an empty entry at position {position}; separate keys with single commas, "
                "newest first."
            )
        try:
            fernets.append(Fernet(part.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            # The exception text could quote the key, so it is deliberately not chained or shown.
            which = "" if len(parts) == 1 else f" (key {position} of {len(parts)})"
            raise KeyConfigError(
                f"{source} is not a valid Fernet key{which}: it must be 32 url-safe base64-encoded bytes. "
                f"Make one with: {_HOW_TO_MAKE_A_KEY}"
            ) from None
    return fernets


class SecretBox:
    """Encrypts and decrypts short secrets with the newest key, decrypting with any configured key."""

    def __init__(self, fernets: list[Fernet], *, source: str = "SECRET_KEY") -> None:
        if not fernets:
            raise KeyConfigError(f"{source} holds no key. Make one with: {_HOW_TO_MAKE_A_KEY}")
        self._multi = MultiFernet(fernets)
        self._count = len(fernets)
        self.source = source

    @classmethod
    def from_keys(cls, text: str, *, source: str = "SECRET_KEY") -> SecretBox:
        """Build from comma-separated Fernet keys, newest first. Raises KeyConfigError."""
        return cls(_parse_keys(text, source=source), source=source)

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a fresh random key that lives only in memory (for `:memory:` databases and tests)."""
        return cls([Fernet(Fernet.generate_key())], source="an in-memory key")

    @classmethod
    def from_setting(cls, secret_key: str | None, key_file: Path) -> SecretBox:
        """Use SECRET_KEY when it is set, else the key file (created once, mode 0600, when missing)."""
        if secret_key is not None and secret_key.strip():
            return cls.from_keys(secret_key, source="SECRET_KEY")
        return cls.from_keys(_read_or_create_key_file(Path(key_file)), source=f"The key file {key_file}")

    @property
    def key_count(self) -> int:
        """How many keys can decrypt (the first one encrypts)."""
        return self._count

    def encrypt(self, plaintext: str) -> str:
        """Encrypt `plaintext` with the newest key; the result is an ASCII Fernet token."""
        return self._multi.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by `encrypt` with any configured key, or raise WrongKeyError."""
        try:
            return self._multi.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise WrongKeyError() from None

    def encrypt_at(self, plaintext: str, now: datetime) -> str:
        """`encrypt`, stamped with `now` (so `decrypt_recent` can tell its age on the same clock)."""
        return self._multi.encrypt_at_time(plaintext.encode("utf-8"), int(now.timestamp())).decode("ascii")

    def decrypt_recent(self, token: str, *, max_age: int, now: datetime) -> str | None:
        """Decrypt a token stamped at most `max_age` seconds before `now`; None when too old or not ours."""
        try:
            return self._multi.decrypt_at_time(
                token.encode("ascii"), ttl=max_age, current_time=int(now.timestamp())
            ).decode("utf-8")
        except (InvalidToken, UnicodeError):
            return None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key, or raise WrongKeyError if no key can read it."""
        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise WrongKeyError() from None

    def __repr__(self) -> str:
        return f"<SecretBox keys={self._count} from {self.source}>"


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyConfigError(
            f"The key file {path} can be read by other users (mode {stat.S_IMODE(mode):03o}); "
            f"restrict it with: chmod 600 {path}"
        )


def _read_key_file(path: Path) -> str:
    _check_private(path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not text:
        raise KeyConfigError(
            f"The key file {path} is empty. Delete it only if no secrets were stored with it, or set "
            f"SECRET_KEY. Make a key with: {_HOW_TO_MAKE_A_KEY}"
        )
    return text


def _read_or_create_key_file(path: Path) -> str:
    """Return the key file's text, creating it once with a new key; safe when two processes race."""
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Write the key to a private temporary file first and link it into place, so a second process
    # never sees a half-written key file: the link either creates the whole file or fails.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return _read_key_file(path)
        except OSError:
            # Some filesystems refuse hard links; fall back to exclusive creation.
            try:
                fd2 = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return _read_key_file(path)
            with os.fdopen(fd2, "wb") as handle:
                handle.write(key + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return _read_key_file(path)
