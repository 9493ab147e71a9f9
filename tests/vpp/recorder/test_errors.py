"""A full, locked, corrupt or unopenable file gives RecorderError naming file and operation."""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tests.vpp.recorder.helpers import T0, fleet_snapshot
from vpp.recorder import Recorder, RecorderError


def test_garbage_file_fails_to_open(tmp_path: Path) -> None:
    db = tmp_path / "garbage.sqlite"
    db.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(RecorderError, match=r"garbage.sqlite: open failed: file is not a database"):
        Recorder(db)


def test_corrupt_pages_fail_reads_and_writes_without_crashing(tmp_path: Path) -> None:
    db = tmp_path / "corrupt.sqlite"
    with Recorder(db) as rec:
        for i in range(20):
            rec.record_snapshot(fleet_snapshot(T0 + timedelta(seconds=10 * i), 200, seed=i))
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(3 * page, len(data) - page, 2 * page):  # every other page after the schema
        data[offset : offset + page] = os.urandom(page)
    db.write_bytes(bytes(data))
    with Recorder(db) as rec:
        with pytest.raises(RecorderError, match=r"corrupt.sqlite: read last snapshot failed"):
            rec.last_snapshot()
        with pytest.raises(RecorderError, match=r"corrupt.sqlite: read snapshots failed"):
            rec.snapshots_frame(T0, T0 + timedelta(hours=1))
        assert rec.integrity_check() != ["ok"]


def test_a_full_disk_fails_the_write_counts_it_and_keeps_going(tmp_path: Path) -> None:
    db = tmp_path / "full.sqlite"
    with Recorder(db) as rec:
        first = fleet_snapshot(T0, 100)
        rec.record_snapshot(first)
        pages = rec.page_counts()[0]
        # The file may not grow past its current size: a disk with no space left.
        rec._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # type: ignore[union-attr]
        big = fleet_snapshot(T0 + timedelta(seconds=10), 1000)
        with pytest.raises(
            RecorderError,
            match=r"full.sqlite: record snapshot failed: "
            r"database or disk is full",
        ):
            rec.record_snapshot(big)
        assert rec.write_errors == 1
        assert rec.last_error is not None and "disk is full" in rec.last_error
        assert rec.last_snapshot() == first  # nothing of the failed poll was kept
        rec.record_event("error", "recorder", "write_failed", "disk full", time=T0)  # still fits
        rec._conn.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[union-attr]
        rec.record_snapshot(big)  # space is back: recording resumes
        assert rec.last_snapshot() == big
        assert rec.write_errors == 1
        assert rec.integrity_check() == ["ok"]


def test_a_locked_file_fails_the_write_after_the_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "locked.sqlite"
    with Recorder(db, busy_timeout_s=0.1) as rec:
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(
                RecorderError,
                match=r"locked.sqlite: record event failed: "
                "database is locked",
            ):
                rec.record_event("info", "t", "k", "m", time=T0)
            other.execute("ROLLBACK")
        finally:
            other.close()
        rec.record_event("info", "t", "k", "m", time=T0)
        assert rec.write_errors == 1 and len(rec.events()) == 1


def test_a_path_that_cannot_be_created_fails_to_open(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(RecorderError, match=r"not-a-folder/vpp.sqlite: open failed"):
        Recorder(blocker / "vpp.sqlite")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files anyway")
def test_a_read_only_file_fails_to_open_or_to_write(tmp_path: Path) -> None:
    db = tmp_path / "ro.sqlite"
    Recorder(db).close()
    db.chmod(0o444)
    try:
        rec = Recorder(db)
    except RecorderError as exc:  # SQLite may refuse at once...
        assert "ro.sqlite: open failed" in str(exc)
        return
    with rec:  # ...or at the first write
        with pytest.raises(RecorderError, match=r"ro.sqlite: record event failed"):
            rec.record_event("info", "t", "k", "m", time=T0)
        assert rec.write_errors == 1


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite"
    Recorder(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RecorderError, match=r"new.sqlite: open failed: schema version 99"):
        Recorder(db)
