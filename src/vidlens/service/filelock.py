"""An exclusive lock between processes on one machine, on a file in the library (POSIX ``flock``)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO


class FileLock:
    """An exclusive advisory lock on ``path``: held by one process at a time, released by :meth:`release`
    or when the holder exits, even by a crash. Not re-entrant: one holder per object.

    Args:
        path: the lock file (created when missing; its contents are not used).
    """

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting for it when ``blocking``; returns whether it is held."""
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+b")  # kept open while the lock is held
        try:
            fcntl.flock(f, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        except BaseException:
            f.close()
            raise
        os.set_inheritable(f.fileno(), False)
        self._file = f
        return True

    def release(self) -> None:
        """Let the lock go (nothing when not held)."""
        f, self._file = self._file, None
        if f is not None:
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
