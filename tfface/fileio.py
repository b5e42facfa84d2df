"""Safe file writing: atomic replacement and an early check that a folder can take output.

Every file tfface writes that something later reads back (configs, weights, model
files, cards, restored images) goes through :func:`atomic_write` or
:func:`atomic_path`: the content is written to a temporary file in the same folder
and then moved over the final name with ``os.replace``, which is atomic on POSIX and
Windows. A process killed mid-write (SIGKILL, power loss before the rename, a full
disk) leaves either the previous complete file or none, never a half-written one;
the temporary file is removed when the write fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import uuid
from typing import Iterator

__all__ = ["atomic_write", "atomic_path", "check_writable_dir", "OutputDirError", "TMP_MARK",
           "NotRegularFileError", "open_regular", "regular_file_problem", "display_name",
           "remove_stale_temps"]

TMP_MARK = ".tfface-tmp-"
"""Part of every temporary file name, so leftovers are recognizable."""


class OutputDirError(OSError):
    """A folder cannot take the output it must hold; the message says why and what to do."""


def _tmp_name(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    stem, dot, ext = base.partition(".")
    # Keep every suffix: writers choose the format from it (OpenCV: .png, .mp4; Keras:
    # .weights.h5 is another format than .h5).
    return os.path.join(d, f".{stem}{TMP_MARK}{uuid.uuid4().hex[:8]}{dot}{ext}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    For writers that need a file name (``model.save_weights``, ``cv2.VideoWriter``).
    When the block raises, or writes nothing, ``path`` is left as it was and the
    temporary file is removed.
    """
    path = os.fspath(path)
    tmp = _tmp_name(path)
    try:
        yield tmp
        if os.path.exists(tmp):
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def atomic_write(path: str | os.PathLike, data: bytes | str, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())


def _probe_write(folder: str) -> None:
    fd, probe = tempfile.mkstemp(prefix=".tfface-write-probe-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)


def check_writable_dir(folder: str | os.PathLike, need_bytes: int = 0, *,
                       what: str = "output folder", hint: str = "") -> None:
    """Create ``folder`` if needed and prove it can take ``need_bytes`` more bytes.

    Writes (and removes) a small probe file, so a read-only folder, a folder owned by
    someone else or a full disk is found before any work starts, and compares the free
    space with ``need_bytes``.

    Raises:
        OutputDirError: the folder cannot be created or written, or has too little space.
    """
    folder = os.fspath(folder)
    shown = os.path.abspath(folder)
    hint = f" {hint}" if hint else ""
    try:
        os.makedirs(folder, exist_ok=True)
        _probe_write(folder)
    except OSError as e:
        reason = e.strerror or str(e)
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason += " (the folder is read-only or belongs to another user)"
        elif e.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += " (the disk is full)"
        raise OutputDirError(f"cannot write to the {what} '{shown}': {reason}."
                             f"{hint}") from e
    if need_bytes > 0:
        free = shutil.disk_usage(folder).free
        if free < need_bytes:
            raise OutputDirError(
                f"the {what} '{shown}' has {free / 1e6:.1f} MB free, but about "
                f"{need_bytes / 1e6:.1f} MB are needed.{hint}")


class NotRegularFileError(OSError):
    """A path that should be a file is a named pipe, socket, device or folder."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def open_regular(path: str | os.PathLike, mode: str = "rb"):
    """Open ``path`` for reading only if it is a regular file (or a link to one).

    The file is opened non-blocking and checked with ``fstat`` on the open
    descriptor, so a named pipe (whose ``open`` would wait for a writer forever), a
    socket or a device is refused at once and a file swapped for one after a check
    cannot slip through.

    Raises:
        NotRegularFileError: ``path`` is not a regular file (the message says what it is).
        OSError: it cannot be opened (missing, permissions, ...).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(f"{_kind(st.st_mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return f


def regular_file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as a file (``None`` when it can be tried).

    Names that are not valid UTF-8 (Python keeps their bytes as surrogates) and
    anything that is not a regular file or a link to one are problems; the path is
    never opened.
    """
    p = os.fspath(path)
    if isinstance(p, str):
        try:
            p.encode("utf-8")
        except UnicodeEncodeError:
            return "file name is not valid UTF-8"
    try:
        st = os.stat(p)
    except OSError as e:
        return f"unreadable ({e.strerror or type(e).__name__})"
    if not stat.S_ISREG(st.st_mode):
        return _kind(st.st_mode) + ", not a regular file"
    return None


def display_name(path: str | os.PathLike) -> str:
    """``path`` printable in any terminal and log: bytes that are not UTF-8 as ``\\xNN``."""
    p = os.fspath(path)
    if isinstance(p, bytes):
        return p.decode("utf-8", "backslashreplace")
    return p.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def remove_stale_temps(path: str | os.PathLike) -> list[str]:
    """Remove temporary files that an earlier, killed write of ``path`` left beside it.

    Only names :func:`atomic_path` makes for this very ``path`` are touched; returns them.
    """
    d, base = os.path.split(os.path.abspath(os.fspath(path)))
    stem, dot, ext = base.partition(".")
    prefix, suffix = f".{stem}{TMP_MARK}", f"{dot}{ext}"
    removed = []
    try:
        names = os.listdir(d)
    except OSError:
        return removed
    for name in names:
        if name.startswith(prefix) and name.endswith(suffix) \
                and len(name) == len(prefix) + 8 + len(suffix):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(d, name))
                removed.append(name)
    return removed


TFLITE_IDENTIFIER = b"TFL3"
"""FlatBuffer file identifier of every ``.tflite`` file (bytes 4..8)."""


def has_tflite_header(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` starts like a TFLite model (identifier at byte 4)."""
    with open(path, "rb") as f:
        head = f.read(8)
    return len(head) >= 8 and head[4:8] == TFLITE_IDENTIFIER
