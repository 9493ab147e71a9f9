"""``run.backup_dir``: the controller's watchdog writes recorder backups on a schedule while it
records, keeps the newest few, survives a folder it cannot write to and tries again later."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vpp.control.backups import copies
from vpp.control.runner import step
from vpp.recorder import Recorder
from vpp.testing.harness import plant, small_site

START = datetime(2026, 6, 21, 8, 0, tzinfo=UTC)


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_backups_on_a_schedule_keep_the_newest(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    site = small_site(run={"backup_dir": str(folder), "backup_interval_h": 0.5, "backup_keep": 2})
    recorder = Recorder(tmp_path / "vpp.sqlite")
    try:
        async with plant(site, START, recorder=recorder) as p:
            for job in ("poll", "plan", "dispatch"):
                assert await p.ctl.run_job(job)
            await step(p.ctl, p.clock, START + timedelta(minutes=100))
            events = [e for e in p.ctl.state.events if e.kind.startswith("backup_")]
    finally:
        recorder.close()
    # At the first watchdog run, then every half hour of controller time.
    assert [e.kind for e in events] == ["backup_written"] * 4
    first = events[0].time
    assert first - START < timedelta(minutes=2)
    assert [e.time - first for e in events] == [timedelta(minutes=30 * i) for i in range(4)]
    kept = copies(folder)
    assert [when for when, _ in kept] == [
        (first + timedelta(minutes=m)).replace(second=0, microsecond=0) for m in (60, 90)
    ]
    assert len(list(folder.iterdir())) == 2  # no partial files left behind
    older, newer = (rows(path, "snapshots") for _, path in kept)
    assert 0 < older < newer  # each copy holds what was recorded until it was made
    assert rows(kept[-1][1], "plans") >= 6


async def test_a_backup_folder_that_cannot_be_written_is_an_event_then_retried(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    site = small_site(run={"backup_dir": str(blocker / "backups")})
    recorder = Recorder(tmp_path / "vpp.sqlite")
    try:
        async with plant(site, START, recorder=recorder) as p:
            assert await p.ctl.run_job("poll")
            await step(p.ctl, p.clock, START + timedelta(minutes=20))
            failed = [e for e in p.ctl.state.events if e.kind == "backup_failed"]
            assert p.ctl.state.jobs["watchdog"].failures == 0
    finally:
        recorder.close()
    # Tried at the first watchdog run and again 15 minutes later, not every 30 s.
    assert len(failed) == 2
    assert failed[1].time - failed[0].time >= timedelta(minutes=15)
    assert "recorder backup failed" in failed[0].message and failed[0].level == "error"
