"""Online backup: a consistent copy of the recorder while another connection keeps writing."""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.vpp.recorder.helpers import T0, fleet_snapshot
from vpp.cli import app
from vpp.recorder import SCHEMA_VERSION, Recorder, RecorderError, backup

#: Bound on every wait between the backup and the writer thread, s.
WAIT_S = 10.0


def event_ids(path: Path) -> list[int]:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM events ORDER BY id")]


def integrity(path: Path) -> list[str]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A recorder file with 30 polls of 200 devices and 50 events, most of it still in the
    WAL (as a running controller leaves it); yields (path, events committed)."""
    db = tmp_path / "vpp.sqlite"
    with Recorder(db) as rec:
        for k in range(30):
            rec.record_snapshot(fleet_snapshot(T0 + timedelta(seconds=10 * k), 200, seed=k))
        for k in range(50):
            rec.record_event("info", "test", "before", f"event {k}", time=T0)
        assert (tmp_path / "vpp.sqlite-wal").stat().st_size > 0
        yield db, 50


class Writer(threading.Thread):
    """The controller's side: its own Recorder on the same file, one event per request."""

    def __init__(self, db: Path) -> None:
        super().__init__(name="recorder-writer")
        self.db = db
        self.requests: queue.Queue[int | None] = queue.Queue()
        self.done: queue.Queue[int | BaseException] = queue.Queue()

    def run(self) -> None:
        with Recorder(self.db) as rec:
            while (k := self.requests.get(timeout=WAIT_S)) is not None:
                try:
                    rec.record_event("info", "test", "during", f"write {k}", time=T0)
                    self.done.put(k)
                except BaseException as exc:  # hand it to the test
                    self.done.put(exc)

    def write(self, k: int) -> None:
        """Have the writer commit one row and wait until it has."""
        self.requests.put(k)
        got = self.done.get(timeout=WAIT_S)
        if isinstance(got, BaseException):
            raise got


def test_copy_while_another_connection_writes(tmp_path: Path, recorded: tuple[Path, int]) -> None:
    db, before = recorded
    writer = Writer(db)
    writer.start()
    steps: list[tuple[int, int]] = []

    def between_steps(copied: int, total: int) -> None:
        # Called by the backup between two steps of the copy: the controller commits now.
        steps.append((copied, total))
        writer.write(len(steps))

    try:
        result = backup(db, tmp_path / "copy.sqlite", progress=between_steps, step_pages=16)
    finally:
        writer.requests.put(None)
        writer.join(WAIT_S)
    assert not writer.is_alive()
    copy = tmp_path / "copy.sqlite"
    # Many steps, each followed by a commit of the writer: the writes overlapped the copy.
    assert len(steps) >= 10 and steps[-1][0] == steps[-1][1] == result.pages
    assert [c for c, _ in steps] == sorted(c for c, _ in steps)  # never restarted
    # The copy holds exactly what was committed when the backup started.
    assert event_ids(copy) == list(range(1, before + 1))
    assert event_ids(db) == list(range(1, before + len(steps) + 1))
    assert integrity(copy) == ["ok"] and result.check == "ok"
    assert result.schema_version == SCHEMA_VERSION and result.bytes == copy.stat().st_size
    # One self-contained file, readable by the recorder as the source was.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("copy", ".copy"))) == [
        "copy.sqlite"
    ]
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with Recorder(copy) as rec:
        last = rec.last_snapshot()
        assert last is not None and last.time == T0 + timedelta(seconds=290)
        assert len(last.devices) == 200


def test_copy_while_a_writer_thread_runs_freely(tmp_path: Path, recorded: tuple[Path, int]) -> None:
    """A writer committing as fast as it can (bounded), not paced by the backup."""
    db, before = recorded
    committed = [before]
    stop = threading.Event()
    started = threading.Event()

    def write() -> None:
        with Recorder(db) as rec:
            for k in range(5000):
                if stop.is_set():
                    return
                rec.record_event("info", "test", "during", f"write {k}", time=T0)
                committed[0] += 1
                started.set()

    thread = threading.Thread(target=write, name="free-writer")
    thread.start()
    try:
        assert started.wait(WAIT_S)
        at_start = committed[0]  # rows committed before the backup started
        result = backup(db, tmp_path / "copy.sqlite", step_pages=4)
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    ids = event_ids(tmp_path / "copy.sqlite")
    assert len(ids) >= at_start and ids == list(range(1, len(ids) + 1))
    assert integrity(tmp_path / "copy.sqlite") == ["ok"] and result.check == "ok"


def test_refuses_to_overwrite_or_to_copy_onto_itself(
    tmp_path: Path, recorded: tuple[Path, int]
) -> None:
    db, _ = recorded
    out = tmp_path / "copy.sqlite"
    out.write_bytes(b"an older backup")
    with pytest.raises(RecorderError, match=r"copy\.sqlite exists"):
        backup(db, out)
    assert out.read_bytes() == b"an older backup"
    assert backup(db, out, overwrite=True).pages > 0
    assert integrity(out) == ["ok"]
    with pytest.raises(RecorderError, match="would overwrite the database itself"):
        backup(db, db, overwrite=True)


def test_errors_name_the_file_and_leave_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(RecorderError, match=r"missing\.sqlite: backup failed: no such database"):
        backup(missing, tmp_path / "out" / "copy.sqlite")
    assert not missing.exists()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(RecorderError, match=r"junk\.sqlite: backup failed: file is not a database"):
        backup(junk, tmp_path / "out" / "copy.sqlite")
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_backs_up_and_reports(tmp_path: Path, recorded: tuple[Path, int]) -> None:
    db, before = recorded
    out = tmp_path / "backups" / "vpp-2026-05-01.sqlite"
    args = ["backup", "--db", str(db), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "integrity check ok" in result.output
    assert event_ids(out) == list(range(1, before + 1))
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1
    assert "backup failed: " in again.output and "exists" in again.output
    assert "[bold red]" not in again.output
    assert CliRunner().invoke(app, [*args, "--force", "--no-check"]).exit_code == 0


def test_cli_fails_cleanly_without_a_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["backup", "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 1
    assert "no such database file" in result.output and "[/]" not in result.output
    assert not (tmp_path / "c").exists() and not (tmp_path / "none.sqlite").exists()
