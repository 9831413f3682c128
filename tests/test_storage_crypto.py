"""Secrets at rest: Fernet keys from SECRET_KEY or a private key file, rotation, and clear errors."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from storage.crypto import KeyConfigError, SecretBox, WrongKeyError

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def test_encrypt_then_decrypt_gives_the_secret_back() -> None:
    """A round trip returns the plaintext, and the token does not contain it."""
    box = SecretBox.from_keys(KEY_A)
    token = box.encrypt("tok-0123456789abcdef")
    assert "tok-0123456789abcdef" not in token
    assert box.decrypt(token) == "tok-0123456789abcdef"


def test_wrong_key_raises_a_sentence_not_garbage() -> None:
    """Decrypting with another key raises WrongKeyError that says what to do."""
    token = SecretBox.from_keys(KEY_A).encrypt("secret")
    with pytest.raises(WrongKeyError) as caught:
        SecretBox.from_keys(KEY_B).decrypt(token)
    message = str(caught.value)
    assert "cannot be decrypted with the current SECRET_KEY" in message
    assert "Put the old key after the new one in SECRET_KEY, comma-separated." in message


def test_a_damaged_token_raises_wrong_key_error() -> None:
    """Garbage in the column is reported the same way, never returned."""
    with pytest.raises(WrongKeyError):
        SecretBox.from_keys(KEY_A).decrypt("not-a-token")


def test_old_key_second_still_decrypts_and_rotate_moves_to_the_newest() -> None:
    """With `new,old` both decrypt; rotate() re-encrypts so `new` alone reads it and `old` does not."""
    old_token = SecretBox.from_keys(KEY_A).encrypt("secret")
    both = SecretBox.from_keys(f"{KEY_B},{KEY_A}")
    assert both.decrypt(old_token) == "secret"
    rotated = both.rotate(old_token)
    assert SecretBox.from_keys(KEY_B).decrypt(rotated) == "secret"
    with pytest.raises(WrongKeyError):
        SecretBox.from_keys(KEY_A).decrypt(rotated)


def test_new_secrets_are_encrypted_with_the_first_key() -> None:
    """The first key in SECRET_KEY is the one that encrypts."""
    token = SecretBox.from_keys(f" {KEY_B} , {KEY_A} ").encrypt("secret")
    assert SecretBox.from_keys(KEY_B).decrypt(token) == "secret"


@pytest.mark.parametrize("bad", ["not-a-key", "c2hvcnQ=", f"{KEY_A},", f"{KEY_A},oops-this-is-wrong"])
def test_malformed_secret_key_names_the_setting_and_never_echoes_it(bad: str) -> None:
    """A bad SECRET_KEY raises KeyConfigError naming SECRET_KEY without quoting the value."""
    with pytest.raises(KeyConfigError) as caught:
        SecretBox.from_setting(bad, Path("/nonexistent/secret.key"))
    message = str(caught.value)
    assert "SECRET_KEY" in message
    for part in bad.split(","):
        if part:
            assert part not in message
    assert caught.value.__cause__ is None


def test_malformed_key_message_says_how_to_make_one() -> None:
    """The message carries the one-liner that generates a key."""
    with pytest.raises(KeyConfigError) as caught:
        SecretBox.from_keys("nope")
    assert "Fernet.generate_key().decode()" in str(caught.value)


def test_key_file_is_generated_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    """Without SECRET_KEY the key file is created private and the same key is used next time."""
    key_file = tmp_path / "data" / "secret.key"
    first = SecretBox.from_setting(None, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    content = key_file.read_bytes()
    token = first.encrypt("secret")
    second = SecretBox.from_setting("", key_file)
    assert key_file.read_bytes() == content
    assert second.decrypt(token) == "secret"
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]


def test_secret_key_setting_wins_over_the_key_file(tmp_path: Path) -> None:
    """With SECRET_KEY set, no key file is created."""
    key_file = tmp_path / "secret.key"
    SecretBox.from_setting(KEY_A, key_file)
    assert not key_file.exists()


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """A group- or world-readable key file is refused with the chmod that fixes it."""
    key_file = tmp_path / "secret.key"
    key_file.write_text(KEY_A + "\n")
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyConfigError) as caught:
        SecretBox.from_setting(None, key_file)
    assert f"chmod 600 {key_file}" in str(caught.value)
    assert KEY_A not in str(caught.value)


def test_a_malformed_key_file_names_the_file_not_the_key(tmp_path: Path) -> None:
    """A key file holding garbage is reported by path, without its content."""
    key_file = tmp_path / "secret.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"garbage-key-material\n")
    os.close(fd)
    with pytest.raises(KeyConfigError) as caught:
        SecretBox.from_setting(None, key_file)
    assert str(key_file) in str(caught.value)
    assert "garbage-key-material" not in str(caught.value)


def test_racing_processes_all_get_the_same_generated_key(tmp_path: Path) -> None:
    """Several threads creating the key file at once end up with one key and no leftovers."""
    key_file = tmp_path / "secret.key"
    barrier = threading.Barrier(8)
    boxes: list[SecretBox] = []

    def worker() -> None:
        barrier.wait()
        boxes.append(SecretBox.from_setting(None, key_file))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    token = boxes[0].encrypt("secret")
    assert len(boxes) == 8
    assert all(box.decrypt(token) == "secret" for box in boxes)
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_repr_shows_no_key() -> None:
    """repr() says how many keys there are, never what they are."""
    text = repr(SecretBox.from_keys(f"{KEY_A},{KEY_B}"))
    assert KEY_A not in text and KEY_B not in text
    assert "keys=2" in text


def test_a_time_stamped_token_reads_back_only_while_young() -> None:
    """A token from encrypt_at reads back within max_age of `now`; after that, or altered, None."""
    from datetime import UTC, datetime, timedelta

    from storage.crypto import SecretBox

    box = SecretBox.generate()
    made = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    token = box.encrypt_at("file F1", made)
    assert box.decrypt_recent(token, max_age=3600, now=made + timedelta(minutes=59)) == "file F1"
    assert box.decrypt_recent(token, max_age=3600, now=made + timedelta(minutes=61)) is None
    assert box.decrypt_recent(token[:-4] + "AAAA", max_age=3600, now=made) is None
    assert SecretBox.generate().decrypt_recent(token, max_age=3600, now=made) is None
