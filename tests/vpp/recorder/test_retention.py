"""Retention deletes exactly the old rows, and the file stops growing over fill/delete cycles."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from optimizer.plan import Plan
from tests.vpp.recorder.helpers import T0, fleet_snapshot
from tests.vpp.recorder.test_store import plan_table, solve_info
from vpp.recorder import Recorder, SetpointRecord

HOUR = timedelta(hours=1)


def fill(rec: Recorder, start: datetime, hours: int, n_devices: int, every: timedelta) -> None:
    """Polls every ``every``, one plan, setpoint, event and input row per quarter hour."""
    steps = int(hours * HOUR / every)
    for i in range(steps):
        at = start + i * every
        rec.record_snapshot(fleet_snapshot(at, n_devices, seed=i))
        if (at - T0) % timedelta(minutes=15) == timedelta(0):
            rec.record_plan(Plan(plan_table(at, 8), solve_info(), pd.DataFrame()), at)
            rec.record_setpoints([SetpointRecord(at, "bat-0004", "battery_w", 1.0, 1.0, 1.0, True)])
            rec.record_event("info", "test", "tick", "tick", time=at)
            index = pd.DatetimeIndex([at], name="time")
            rec.record_inputs(pd.DataFrame({"price_eur_per_mwh": [50.0]}, index=index))


def counts(rec: Recorder) -> dict[str, int]:
    start, end = T0 - timedelta(days=30), T0 + timedelta(days=30)
    return {
        "polls": len(rec.poll_times(start, end)),
        "plans": len(rec.plans()),
        "setpoints": len(rec.setpoints()),
        "events": len(rec.events(limit=None)),
        "inputs": len(rec.inputs()),
    }


def test_retention_deletes_only_rows_older_than_the_cutoff(tmp_path: Path) -> None:
    with Recorder(tmp_path / "r.sqlite", retention_days=1.0) as rec:
        fill(rec, T0, hours=48, n_devices=3, every=timedelta(minutes=5))
        now = T0 + timedelta(hours=48)
        stats = rec.apply_retention(now)
        cutoff = pd.Timestamp(now - timedelta(days=1))
        assert rec.poll_times(T0, now).min() == cutoff
        assert counts(rec) == {
            "polls": 288,
            "plans": 96,
            "setpoints": 96,
            "events": 96,
            "inputs": 96,
        }
        assert stats.deleted == {
            "snapshots": 288 * 3,
            "plans": 96,
            "setpoints": 96,
            "events": 96,
            "inputs": 96,
            "measured": 0,
        }
        assert rec.plans()["created_at"].min() == cutoff
        assert rec.events(limit=None)["time"].min() == cutoff
        assert rec.inputs().index.min() == cutoff
        assert rec.apply_retention(now).deleted == dict.fromkeys(stats.deleted, 0)
        assert rec.integrity_check() == ["ok"]


def test_snapshots_can_be_kept_shorter_than_the_rest(tmp_path: Path) -> None:
    with Recorder(tmp_path / "r.sqlite", retention_days=2, snapshot_retention_days=0.25) as rec:
        fill(rec, T0, hours=12, n_devices=2, every=timedelta(minutes=15))
        rec.apply_retention(T0 + timedelta(hours=12))
        assert counts(rec) == {
            "polls": 24,
            "plans": 48,
            "setpoints": 48,
            "events": 48,
            "inputs": 48,
        }


def test_file_stops_growing_over_fill_and_retention_cycles(tmp_path: Path) -> None:
    pages: list[int] = []
    with Recorder(tmp_path / "r.sqlite", retention_days=2 / 24) as rec:
        for cycle in range(10):
            start = T0 + cycle * HOUR
            fill(rec, start, hours=1, n_devices=200, every=timedelta(minutes=1))
            rec.apply_retention(start + HOUR)
            pages.append(rec.page_counts()[0])
        assert counts(rec)["polls"] == 120
        assert rec.integrity_check() == ["ok"]
    # Two hours are kept: from the third cycle on, deleted pages are reused, not added.
    steady = pages[2]
    assert max(pages[3:]) <= steady * 1.05, pages
    assert pages[1] < steady  # it did grow while filling up to the retention


def test_shorter_retention_gives_space_back_to_the_file_system(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with Recorder(db, retention_days=1) as rec:
        fill(rec, T0, hours=4, n_devices=200, every=timedelta(minutes=1))
        before = rec.page_counts()[0]
    size_before = db.stat().st_size
    with Recorder(db, retention_days=1 / 24) as rec:
        stats = rec.apply_retention(T0 + timedelta(hours=4))
        pages, free = rec.page_counts()
    assert stats.released_pages > 0
    assert pages < 0.45 * before  # 3 of 4 hours deleted, at most 25 % kept as free pages
    assert free <= 0.25 * pages + 1
    assert db.stat().st_size < 0.45 * size_before
