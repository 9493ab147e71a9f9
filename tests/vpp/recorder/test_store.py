"""Round trips of every record type through a real SQLite file, also after reopening."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.snapshot import (
    BreakerState,
    CommsHealth,
    DatacentreReading,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Snapshot,
)
from optimizer.plan import Plan, SolveInfo
from tests.vpp.recorder.helpers import T0, battery, fleet_snapshot, pv, state
from vpp.core.clock import ManualClock
from vpp.recorder import SCHEMA_VERSION, Recorder, RecorderError, SetpointRecord
from vpp.recorder.db import to_ms


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "vpp.sqlite"


def mixed_snapshot(at: datetime) -> Snapshot:
    """Every reading type, an offline device, a device never read, a full health record."""
    states = [
        state("pv-1", "pv", pv(4321.5, 9_876_543.0), at),
        state("bat-1", "battery", battery(-1500.0, 42.5), at),
        state("bat-2", "battery", battery(800.0), at, online=False),
        state("meter", "meter", MeterReading(12_000.0, 5.0e8, 1.0e8), at),
        state(
            "hp",
            "heat_pump",
            HeatPumpReading(90_000.0, 100_000.0, 270_000.0, 31.5, 70.0, running=True),
            at,
        ),
        state("dc", "datacentre", DatacentreReading(450_000.0, 34.5, 80.0, None), at),
        DeviceState(
            "pv-dead",
            "pv",
            None,
            CommsHealth(
                last_attempt=at,
                consecutive_failures=9,
                error_count=9,
                breaker=BreakerState.OPEN,
                last_error="pv-dead: connection refused",
            ),
        ),
        # A reading whose class does not follow from its kind is kept as it was.
        state("odd", "pv", MeterReading(1.0, None, None), at),
    ]
    return Snapshot(at, {s.id: s for s in states})


def test_snapshot_round_trip_after_reopen(db: Path) -> None:
    first, second = mixed_snapshot(T0), mixed_snapshot(T0 + timedelta(seconds=10))
    with Recorder(db) as rec:
        rec.record_snapshot(first)
        rec.record_snapshot(second)
    with Recorder(db) as rec:
        assert rec.last_snapshot() == second


def test_snapshot_times_are_kept_to_the_millisecond(db: Path) -> None:
    at = datetime(2026, 5, 1, 8, 0, 0, 123_456, tzinfo=UTC)
    with Recorder(db) as rec:
        rec.record_snapshot(Snapshot(at, {"p": state("p", "pv", pv(1.0), at)}))
        got = rec.last_snapshot()
    assert got is not None
    assert got.time == at.replace(microsecond=123_000)
    assert got.devices["p"].read_at == at.replace(microsecond=123_000)


def test_snapshots_frame_has_main_numbers_and_json(db: Path) -> None:
    with Recorder(db) as rec:
        rec.record_snapshot(mixed_snapshot(T0 - timedelta(seconds=10)))  # outside the window
        rec.record_snapshot(mixed_snapshot(T0))
        frame = rec.snapshots_frame(T0, T0 + timedelta(minutes=1), with_json=True)
        only = rec.snapshots_frame(
            T0 - timedelta(minutes=1), T0 + timedelta(minutes=1), devices=["bat-1"]
        )
    rows = frame.set_index("device")
    assert len(rows) == 8
    assert (frame["time"] == pd.Timestamp(T0)).all()
    assert rows.loc["pv-1", "power_w"] == 4321.5
    assert rows.loc["pv-1", "energy_wh"] == 9_876_543.0
    assert rows.loc["bat-1", "soc_pct"] == 42.5
    assert rows.loc["meter", "energy_wh"] == 5.0e8
    assert rows.loc["hp", "power_w"] == 90_000.0
    assert not rows.loc["bat-2", "online"] and rows.loc["pv-1", "online"]
    assert rows.loc["bat-2", "read_at"] == pd.Timestamp(T0 - timedelta(seconds=30))
    dead = rows.loc["pv-dead"]
    assert np.isnan(dead["power_w"]) and pd.isna(dead["reading"])
    assert json.loads(str(rows.loc["dc", "reading"]))["waste_heat_temp_c"] == 34.5
    assert json.loads(str(dead["health"]))["breaker"] == "open"
    assert list(only["device"]) == ["bat-1", "bat-1"]


def test_snapshot_rows_view_reads_like_a_flat_table(db: Path) -> None:
    with Recorder(db) as rec:
        rec.record_snapshot(mixed_snapshot(T0))
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT time_utc, kind, power_w FROM snapshot_rows WHERE device = 'pv-1'"
        ).fetchone()
    assert row == ("2026-05-01T08:00:00.000Z", "pv", 4321.5)


def solve_info(status: str = "optimal", reason: str | None = None) -> SolveInfo:
    return SolveInfo(
        status=status,
        mode="aggregated",
        objective_eur=None if reason else 123.45,
        cost_eur={"energy": 100.0, "wear": 23.45},
        build_s=0.1,
        solve_s=0.5,
        split_s=0.01,
        total_s=0.61,
        n_variables=1000,
        n_constraints=900,
        n_units={"battery": 3, "pv": 2},
        reused_model=False,
        slacks={},
        fallback_reason=reason,
        warnings=("late prices",),
    )


def plan_table(start: datetime, steps: int = 144) -> pd.DataFrame:
    index = pd.date_range(start, periods=steps, freq="15min", name="timestamp")
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "pv_w": rng.uniform(0, 1e6, steps),
            "battery_w": rng.normal(0, 1e5, steps),
            "bat-001.battery_w": rng.normal(0, 5e3, steps),
        },
        index=index,
    )


def test_plan_round_trip_after_reopen(db: Path) -> None:
    created = T0 + timedelta(minutes=14, seconds=30)
    frame = plan_table(T0 + timedelta(minutes=15))
    with Recorder(db) as rec:
        rec.record_plan(Plan(plan_table(T0), solve_info(), pd.DataFrame()), T0)
        rec.record_plan(
            Plan(frame, solve_info("fallback", "solver timed out"), pd.DataFrame()), created
        )
    with Recorder(db) as rec:
        last = rec.last_plan()
        summary = rec.plans()
    assert last is not None
    got_created, got_frame, info = last
    assert got_created == created
    pd.testing.assert_frame_equal(got_frame, frame, check_freq=False)
    assert str(pd.DatetimeIndex(got_frame.index).tz) == "UTC"
    assert info["status"] == "fallback" and info["fallback_reason"] == "solver timed out"
    assert info["n_units"] == {"battery": 3, "pv": 2} and info["warnings"] == ["late prices"]
    assert list(summary["status"]) == ["optimal", "fallback"]
    assert summary["objective_eur"].iloc[0] == 123.45 and np.isnan(summary["objective_eur"][1])
    assert summary["first_step"].iloc[1] == pd.Timestamp(T0 + timedelta(minutes=15))
    assert list(summary["n_steps"]) == [144, 144]


def test_empty_recorder_has_no_last_plan_or_snapshot(db: Path) -> None:
    with Recorder(db) as rec:
        assert rec.last_plan() is None
        assert rec.last_snapshot() is None
        assert rec.events().empty and rec.setpoints().empty
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


def test_setpoints_round_trip(db: Path) -> None:
    records = [
        SetpointRecord(T0, "bat-1", "battery_w", 6000.0, 5000.0, 4990.0, True, "clamped"),
        SetpointRecord(T0, "pv-1", "pv_limit_pct", 0.0, 5.0, None, False, "no read-back"),
    ]
    later = SetpointRecord(T0 + timedelta(minutes=15), "bat-1", "battery_w", 0.0, 0.0, 0.0, True)
    with Recorder(db) as rec:
        assert rec.record_setpoints(records) == 2
        rec.record_setpoints([later], dry_run=True)
    with Recorder(db) as rec:
        frame = rec.setpoints()
        since = rec.setpoints(T0 + timedelta(minutes=1))
        of_pv = rec.setpoints(device="pv-1")
    assert len(frame) == 3
    first = frame.iloc[0]
    assert (first["device"], first["requested"], first["written"], first["readback"]) == (
        "bat-1",
        6000.0,
        5000.0,
        4990.0,
    )
    assert first["ok"] and first["message"] == "clamped" and not first["dry_run"]
    assert np.isnan(frame.iloc[1]["readback"]) and not frame.iloc[1]["ok"]
    assert list(since["dry_run"]) == [True]
    assert list(of_pv["quantity"]) == ["pv_limit_pct"]


def test_events_round_trip_and_limit(db: Path) -> None:
    clock = ManualClock(T0)
    with Recorder(db, clock=clock) as rec:
        for i in range(5):
            rec.record_event(
                "warning",
                "poll",
                "device_offline",
                f"bat-{i} offline",
                device=f"bat-{i}",
                data={"failures": i, "nan": float("nan")},
            )
            clock.advance(60)
        rec.record_event("info", "plan", "plan_ready", "plan ok", time=T0 - timedelta(hours=1))
    with Recorder(db) as rec:
        everything = rec.events(limit=None)
        latest = rec.events(limit=2)
        since = rec.events(T0 + timedelta(minutes=3))
        one = rec.events(device="bat-1")
    assert len(everything) == 6 and everything["time"].is_monotonic_increasing
    assert everything.iloc[0]["kind"] == "plan_ready" and pd.isna(everything.iloc[0]["device"])
    assert list(latest["device"]) == ["bat-3", "bat-4"]
    assert list(since["device"]) == ["bat-3", "bat-4"]
    assert json.loads(one.iloc[0]["data"]) == {"failures": 1, "nan": None}
    assert one.iloc[0]["time"] == pd.Timestamp(T0 + timedelta(minutes=1))


def test_inputs_upsert_by_time(db: Path) -> None:
    index = pd.date_range(T0, periods=4, freq="15min", name="time")
    prices = pd.DataFrame({"price_eur_per_mwh": [50.0, 60.0, 70.0, 80.0]}, index=index)
    weather = pd.DataFrame(
        {"outdoor_temp_c": [5.0, np.nan, 7.0], "price_eur_per_mwh": [np.nan, 61.0, np.nan]},
        index=index[1:],
    )
    with Recorder(db) as rec:
        rec.record_inputs(prices)
        rec.record_inputs(weather)
        got = rec.inputs(T0, T0 + timedelta(hours=1))
        with pytest.raises(ValueError, match="unknown column"):
            rec.record_inputs(prices.rename(columns={"price_eur_per_mwh": "price"}))
        with pytest.raises(ValueError, match="aligned"):
            rec.record_inputs(prices.set_axis(index + pd.Timedelta(minutes=1)))
    # NaN means "not known in this batch": the value recorded before stays.
    assert list(got["price_eur_per_mwh"]) == [50.0, 60.0, 61.0, 80.0]
    np.testing.assert_array_equal(got["outdoor_temp_c"], [np.nan, 5.0, np.nan, 7.0])
    assert got["co2_g_per_kwh"].isna().all()
    assert got.index.equals(index)


def test_naive_times_are_refused(db: Path) -> None:
    with Recorder(db) as rec, pytest.raises(ValueError, match="naive"):
        rec.record_event("info", "t", "k", "m", time=datetime(2026, 5, 1, 8, 0))
    with Recorder(db) as rec:
        assert rec.events().empty and rec.write_errors == 0


def test_closed_recorder_raises(db: Path) -> None:
    rec = Recorder(db)
    rec.close()
    rec.close()
    with pytest.raises(RecorderError, match="record event failed: recorder is closed"):
        rec.record_event("info", "t", "k", "m", time=T0)


def test_a_1000_device_poll_is_recorded_whole(db: Path) -> None:
    """Every device of every poll comes back as it went in (the time it takes is measured by
    bench/recorder_retention.py)."""
    snapshots = [fleet_snapshot(T0 + timedelta(seconds=10 * i), 1000, seed=i) for i in range(30)]
    with Recorder(db) as rec:
        for snap in snapshots:
            rec.record_snapshot(snap)
        assert rec.last_snapshot() == snapshots[-1]
        assert rec.write_errors == 0


def test_new_devices_after_a_failed_write_are_recorded(db: Path, tmp_path: Path) -> None:
    at = T0
    with Recorder(db, busy_timeout_s=0.05) as rec:
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        snap = Snapshot(at, {"new": state("new", "pv", PvReading(1.0, 2.0, 3.0, None, None), at)})
        with pytest.raises(RecorderError, match="record snapshot failed: database is locked"):
            rec.record_snapshot(snap)
        blocker.execute("ROLLBACK")
        blocker.close()
        rec.record_snapshot(snap)  # the device row rolled back too: it must be written again
    with Recorder(db) as rec:
        assert rec.last_snapshot() == snap
        assert list(rec.snapshots_frame(at, at + timedelta(seconds=1))["device"]) == ["new"]


async def test_concurrent_writes_from_the_event_loop_through_threads(db: Path) -> None:
    """As the controller does with asyncio.to_thread (an own pool here, shut down at the end)."""
    snapshots = [fleet_snapshot(T0 + timedelta(seconds=10 * i), 100, seed=i) for i in range(20)]
    loop = asyncio.get_running_loop()
    with Recorder(db) as rec, ThreadPoolExecutor(4) as pool:
        await asyncio.gather(
            *(loop.run_in_executor(pool, rec.record_snapshot, s) for s in snapshots),
            *(
                loop.run_in_executor(
                    pool, partial(rec.record_event, "info", "t", "k", f"e{i}", time=T0)
                )
                for i in range(20)
            ),
        )
        frame = rec.snapshots_frame(T0, T0 + timedelta(hours=1))
        assert len(frame) == 20 * 100 and frame.groupby("time").size().eq(100).all()
        assert len(rec.events(limit=None)) == 20
        assert rec.write_errors == 0


def test_a_version_1_file_is_upgraded_in_place(db: Path) -> None:
    """A file written before the roll-up table existed opens, keeps its rows and gains it."""
    from vpp.recorder.db import MIGRATIONS

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("BEGIN")
        MIGRATIONS[0](conn)
        conn.execute("INSERT INTO polls (time_ms, n_devices) VALUES (?, 0)", (to_ms(T0),))
        conn.execute("PRAGMA user_version = 1")
        conn.execute("COMMIT")
    with Recorder(db) as rec:
        assert rec.first_poll_time() == T0
        assert rec.measured().empty and list(rec.measured().columns)[:2] == ["polls", "grid_polls"]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
