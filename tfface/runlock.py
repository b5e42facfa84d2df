"""One writer per folder: an OS lock that a second process on the same run directory meets.

A training run holds ``RUN_DIR/.tfface-train.lock`` from its first write to its
end; a second ``pipelines.train`` on the same folder (a second terminal, a job
started twice) is refused with a message naming the process that holds it (pid,
host, command, start time) and changes nothing, while the first continues.

The rule for stale locks: the lock is ``fcntl.flock`` on that file, which the kernel
releases when the holding process ends in any way (exit, crash, SIGKILL, reboot), so
a lock file left behind by a dead process never blocks: the next process takes the
lock at once and rewrites the file. The file's content only names the holder for the
message. The file is removed when the lock is released; a process that opened the
old file just before it was removed notices (the path no longer points at the file
it locked) and tries again, so two processes never both hold the lock.

Where ``flock`` is not available (some network file systems answer ENOLCK), the
content decides: a recorded pid that is dead on this host is taken over, a live one
or one on another host is refused (remove the file by hand once you are sure).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from typing import Any, Iterator

from tfface.fileio import OutputDirError

try:
    import fcntl
except ImportError:  # Windows: no flock; the pid rule below applies
    fcntl = None  # type: ignore[assignment]

__all__ = ["DirBusyError", "DirLock", "locked", "lock_path"]


class DirBusyError(OutputDirError):
    """Another live process holds the folder's lock; the message names it."""


def lock_path(folder: str | os.PathLike, purpose: str = "train") -> str:
    return os.path.join(os.fspath(folder), f".tfface-{purpose}.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def _read_holder(path: str) -> dict[str, Any]:
    for _ in range(20):  # the holder may be between truncating and writing its record
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return {}
        if text.strip():
            try:
                info = json.loads(text)
                return info if isinstance(info, dict) else {}
            except ValueError:
                return {}
        time.sleep(0.01)
    return {}


def _describe(info: dict[str, Any]) -> str:
    if not info:
        return "another process"
    parts = [f"pid {info.get('pid', '?')} on host {info.get('host', '?')}"]
    if info.get("command"):
        parts.append(f"running `{info['command']}`")
    if info.get("started"):
        parts.append(f"since {info['started']}")
    return "process " + ", ".join(parts)


class DirLock:
    """An exclusive, non-blocking lock on ``folder`` for ``purpose`` (see the module doc).

    ``acquire()`` raises :class:`DirBusyError` when another live process holds it;
    ``release()`` (or leaving the ``with`` block) frees it.
    """

    def __init__(self, folder: str | os.PathLike, purpose: str = "train", *,
                 what: str = "run directory", hint: str = ""):
        self.folder = os.fspath(folder)
        self.purpose = purpose
        self.path = lock_path(folder, purpose)
        self.what = what
        self.hint = hint
        self._fd: int | None = None

    def _record(self) -> bytes:
        info = {
            "pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(os.path.basename(a) if i == 0 else a
                                for i, a in enumerate(sys.argv))[:300],
        }
        return (json.dumps(info) + "\n").encode("utf-8")

    def _busy(self, info: dict[str, Any]) -> DirBusyError:
        hint = f" {self.hint}" if self.hint else ""
        return DirBusyError(
            f"the {self.what} '{os.path.abspath(self.folder)}' is in use by "
            f"{_describe(info)} (lock file {self.path}); nothing was changed. Wait for it to "
            f"finish{hint}.")

    def acquire(self) -> "DirLock":
        os.makedirs(self.folder, exist_ok=True)
        for _ in range(50):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise self._busy(_read_holder(self.path)) from None
                    except OSError as e:
                        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                            raise
                        self._pid_rule()
                else:
                    self._pid_rule()
                # The file may have been removed (and recreated) by the previous holder
                # between our open and our lock: then we locked a file nobody sees.
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, self._record())
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            self._fd = fd
            return self
        raise self._busy({})

    def _pid_rule(self) -> None:
        info = _read_holder(self.path)
        pid = info.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return
        if info.get("host") == socket.gethostname() and not _pid_alive(pid):
            return  # a dead process on this host: take over
        raise self._busy(info)

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove while still holding the lock; see the module doc for the race this avoids.
        with contextlib.suppress(OSError):
            os.remove(self.path)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def locked(folder: str | os.PathLike, purpose: str = "train", **kw) -> Iterator[DirLock]:
    """``with locked(run_dir): ...``: hold the folder's ``purpose`` lock for the block."""
    lock = DirLock(folder, purpose, **kw)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
