"""Atomic file writes: write to a temporary file beside the destination, then rename over it.

A run interrupted mid-write never leaves a truncated output behind: readers see the old file or the
complete new one. A process *killed* mid-write (SIGKILL, power loss) cannot remove its temporary file; the
temporary's name records the host and process that wrote it (``.NAME.HOST.PID.RANDOM.tmp``), and the next
write of the same target removes those whose process is gone (same host only: another machine's process
cannot be checked, so its files are left alone unless a day old). Nothing else is ever touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: A temporary file left by a writer on another host is removed only when older than this (seconds).
FOREIGN_STALE_AFTER = 24 * 3600


def _umask_from_proc() -> int | None:
    """The process umask from /proc/self/status (Linux ≥ 4.7), which reads it without changing it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_by_setting() -> int:
    """The umask the only portable way, setting and restoring it: done once, at import, under a lock, so
    no thread of ours writes a file in between with the umask at 0."""
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()
_PROC_UMASK = _umask_from_proc()
_HAS_PROC_UMASK = _PROC_UMASK is not None
#: the umask when featstat was imported, read once (used where /proc/self/status does not show it)
UMASK_AT_IMPORT: int = _PROC_UMASK if _PROC_UMASK is not None else _umask_by_setting()


def current_umask() -> int:
    """The umask to apply to new files: read from /proc/self/status where the system shows it (no set/reset
    race, follows later ``os.umask`` calls), else the value read once at import."""
    if _HAS_PROC_UMASK:
        mask = _umask_from_proc()
        if mask is not None:
            return mask
    return UMASK_AT_IMPORT


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep the file
    return True


def clean_stale_temporaries(dest: Path) -> list[Path]:
    """Remove temporary files of earlier :func:`atomic_write` calls for ``dest`` whose writer is gone.

    Only names of our own pattern for this exact target are considered; a file is removed when it was
    written on this host by a process that no longer runs, or on another host more than a day ago.
    Returns the paths removed. Never raises for files that vanish or cannot be removed.
    """
    pattern = re.compile(rf"^\.{re.escape(dest.name)}\.([0-9a-f]{{8}})\.([0-9]+)\.[^./]+\.tmp$")
    removed: list[Path] = []
    me, host = os.getpid(), _host_tag()
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        tag, pid = m.group(1), int(m.group(2))
        if tag == host:
            stale = pid != me and not _pid_alive(pid)
        else:
            try:
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > FOREIGN_STALE_AFTER
            except OSError:
                continue
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing and move it to ``path`` when the block ends without error.

    ``mode`` is "wb" or "w" (text, UTF-8). Parent directories are created. On error the temporary file
    is removed and ``path`` is left untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(dest)  # left by a writer that was killed mid-write
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.{_host_tag()}.{os.getpid()}.", suffix=".tmp", dir=dest.parent
    )
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
