"""featstat._atomic: atomically written files get the umask's permissions, read without a set/reset race."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from featstat import _atomic
from featstat._atomic import atomic_write_bytes, current_umask


@pytest.fixture
def umask_027():
    set_umask = os.umask  # the tests replace os.umask; restore with the real one
    before = set_umask(0o027)
    yield
    set_umask(before)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_file_gets_the_permissions_open_would_give(tmp_path, umask_027):
    atomic_write_bytes(tmp_path / "a.bin", b"1")
    with open(tmp_path / "plain.bin", "wb") as fh:
        fh.write(b"1")
    assert _mode(tmp_path / "a.bin") == _mode(tmp_path / "plain.bin") == 0o640


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc/self/status")
def test_writes_never_set_the_umask_where_proc_shows_it(tmp_path, umask_027, monkeypatch):
    """Setting the umask to read it leaves a window in which another thread creates files with umask 0."""

    def forbidden(mask: int) -> int:
        raise AssertionError("os.umask called during a write")

    monkeypatch.setattr(os, "umask", forbidden)
    assert current_umask() == 0o027  # follows a change made after import
    atomic_write_bytes(tmp_path / "a.bin", b"1")
    assert _mode(tmp_path / "a.bin") == 0o640


def test_without_proc_the_umask_read_at_import_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(_atomic, "_HAS_PROC_UMASK", False)
    monkeypatch.setattr(_atomic, "UMASK_AT_IMPORT", 0o077)
    monkeypatch.setattr(os, "umask", lambda mask: pytest.fail("os.umask called during a write"))
    assert current_umask() == 0o077
    atomic_write_bytes(tmp_path / "a.bin", b"1")
    if sys.platform != "win32":
        assert _mode(tmp_path / "a.bin") == 0o600


def test_umask_read_at_import_is_the_process_umask() -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    assert _atomic._umask_by_setting() == mask
