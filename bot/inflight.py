"""Which outbox rows a live process is still working on: one advisory file lock per idempotency key.

A pending outbox row means "someone called Twilio and has not written down the answer yet". Only a row
whose owner has died may be reconciled; a row that another replica is still working on must be left
alone, or a restarting replica would post "outcome unknown" for a message its peer is about to confirm.
The owner holds a lock on the key from before the claim until the card is posted. The kernel drops the
lock when the process dies, even on `kill -9`, so a lock that can be taken means nobody alive is working
on that key. Locks from two replicas in one process conflict too (the locks belong to open files, not
processes), which is what the tests rely on.

On Linux the lock is a one-byte open-file-description lock (`F_OFD_SETLK`) at an offset given by 62 bits
of the key's SHA-256, in one of 64 files `<database>.inflight/keys-NN.lock` (the kernel scans a file's
locks one by one, so thousands of sends in flight are spread over several files): one system call to take
or give up, on the event loop, with no file created per key (creating one costs about half a
millisecond on ext4, once per send). Elsewhere each key gets its own file,
`<database>.inflight/<hash of key>.lock`, under `flock`; it is removed when the lease is given up, and
whoever locked a file that was removed meanwhile notices and tries again, so two processes can never both
hold one key.

A lease is given up when the asyncio task that took it ends (after the card is posted, or when the task
fails or is cancelled). Without `fcntl` (not POSIX) or for an in-memory database, ownership is per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["InFlight", "Lease"]

# Linux's open-file-description locks: byte ranges, owned by the open file (not the process).
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None) if fcntl is not None else None


def _ofd_lock(handle: IO[bytes], offset: int, kind: int) -> None:
    """Set or clear (`kind`: F_WRLCK / F_UNLCK) the one-byte lock at `offset`; OSError when it is taken."""
    assert fcntl is not None and _OFD_SETLK is not None
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks), in the C layout.
    fcntl.fcntl(handle.fileno(), _OFD_SETLK, struct.pack("hhqqi", kind, os.SEEK_SET, offset, 1, 0))


def _offset(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") >> 2


_KEY_FILES = 64


@dataclass(frozen=True, eq=False)  # eq=False: a lease is one holding, told apart by identity
class Lease:
    """The right to work on one key; `release()` it when done (idempotent)."""

    _owner: InFlight
    key: str
    _handle: IO[bytes] | None
    _path: Path | None
    _offset: int | None = None

    def release(self) -> None:
        """Give the key up and remove its lock file."""
        if self._owner._held.get(self.key) is not self:
            return
        del self._owner._held[self.key]
        if self._handle is None:
            return
        if self._offset is not None:  # a byte in the shared file: unlock it, keep the file open
            with contextlib.suppress(OSError):
                _ofd_lock(self._handle, self._offset, fcntl.F_UNLCK)
            return
        with contextlib.suppress(OSError):
            if self._path is not None:
                # Removed while still locked: a process that opened it meanwhile sees it is gone.
                self._path.unlink()
        self._handle.close()  # closing drops the flock


class InFlight:
    """Hands out leases on idempotency keys; `directory` None keeps them within this process."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory if fcntl is not None else None
        self._held: dict[str, Lease] = {}
        self._key_files: dict[int, IO[bytes]] = {}  # Linux: the files holding the keys' locks, kept open

    @classmethod
    def beside(cls, database_path: Path) -> InFlight:
        """Leases shared by every process using the database at `database_path` (":memory:": this one)."""
        if str(database_path) == ":memory:":
            return cls(None)
        return cls(database_path.with_name(database_path.name + ".inflight"))

    def close(self) -> None:
        """Give up every lease and close the lock files (at shut-down, after the drain)."""
        for lease in list(self._held.values()):
            lease.release()
        for handle in self._key_files.values():
            handle.close()
        self._key_files.clear()

    def sweep(self) -> int:
        """Remove lock files nobody holds (left by a process that died); returns how many."""
        if self._directory is None or fcntl is None or not self._directory.is_dir():
            return 0
        return _sweep(self._directory)

    def try_acquire(self, key: str) -> Lease | None:
        """A lease on `key`, or None at once when a live process (this one included) holds it."""
        if key in self._held:
            return None
        if self._directory is None or fcntl is None:
            lease = Lease(self, key, None, None)
            self._held[key] = lease
            return lease
        if _OFD_SETLK is not None:
            offset = _offset(key)
            shard = offset % _KEY_FILES
            handle = self._key_files.get(shard)
            if handle is None:
                self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                name = f"keys-{shard:02d}.lock"
                handle = self._key_files[shard] = open(self._directory / name, "ab")  # noqa: SIM115
            try:
                _ofd_lock(handle, offset, fcntl.F_WRLCK)
            except OSError:
                return None
            lease = Lease(self, key, handle, None, offset)
            self._held[key] = lease
            return lease
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._directory / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:40] + ".lock")
        handle = open(path, "ab")  # noqa: SIM115 - the lease owns the handle until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return None
        if not _same_file(handle, path):
            # The previous owner finished and removed the file between our open and our lock.
            handle.close()
            return self.try_acquire(key)
        lease = Lease(self, key, handle, path)
        self._held[key] = lease
        return lease


def _sweep(directory: Path) -> int:
    removed = 0
    # Only the per-key files: the shared keys.lock must stay, or a new process would lock another file.
    for path in directory.glob("?" * 40 + ".lock"):
        try:
            with open(path, "ab") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(handle, path):
                    path.unlink()
                    removed += 1
        except OSError:
            continue  # held by a live process, or gone already
    return removed


def _same_file(handle: IO[bytes], path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
