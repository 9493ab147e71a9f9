"""A synthetic recorded day exports in the input schema with exact PV and load values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adapters.snapshot import DatacentreReading, HeatPumpReading, MeterReading, Snapshot
from tests.vpp.recorder.helpers import battery, pv, state
from vpp.cli import app
from vpp.core.site import Site, read_site
from vpp.data.schema import read_inputs, read_raw_inputs, validate_inputs
from vpp.recorder import (
    ExportError,
    PartialDayError,
    Recorder,
    SetpointRecord,
    day_bounds,
    export_day,
    write_day,
)
from vpp.recorder.export import apply_retention

#: The spring DST day in Berlin: 23 hours, 92 quarter hours from 2026-03-28T23:00Z.
DAY = date(2026, 3, 29)
START, END = (t.to_pydatetime() for t in day_bounds(DAY, "Europe/Berlin"))
EVERY = timedelta(minutes=5)
ANNUAL_MWH = 1400.0
PV_KWP = {"pv-1": 6.2, "pv-2": 10.0, "pv-3": 20.0}

BATTERY = "capacity_wh = 10000, max_charge_w = 5000, max_discharge_w = 5000"
SITE_TOML = f"""
devices = [
  {{ id = "pv-1", kind = "pv", rated_w = 5600, peak_wp = 6200, modbus = {{ port = 15100 }} }},
  {{ id = "pv-2", kind = "pv", rated_w = 9000, peak_wp = 10000, modbus = {{ port = 15101 }} }},
  {{ id = "pv-3", kind = "pv", rated_w = 20000, modbus = {{ port = 15102 }} }},
  {{ id = "bat-1", kind = "battery", {BATTERY}, modbus = {{ port = 15110 }} }},
  {{ id = "bat-2", kind = "battery", {BATTERY}, modbus = {{ port = 15111 }} }},
  {{ id = "grid-meter", kind = "meter", modbus = {{ port = 15120 }} }},
  {{ id = "dc", kind = "datacentre", it_power_w = 500000, modbus = {{ port = 15121 }} }},
  {{ id = "hp", kind = "heat_pump", max_el_w = 150000, modbus = {{ port = 15122 }} }},
]
[site]
name = "test district"
[grid]
import_limit_w = 800000
export_limit_w = 500000
meter = "grid-meter"
base_load_annual_wh = {ANNUAL_MWH * 1e6}
[heat]
annual_demand_wh = 6e9
"""


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE_TOML)
    return path


@pytest.fixture
def site(site_file: Path) -> Site:
    return read_site(site_file)


def flows(k: int) -> dict[str, float]:
    """Poll ``k``'s true flows [W]: per-kWp PV, batteries, heat pump, load, data centre."""
    return {
        "pv_w_per_kwp": 900.0 * abs(np.sin(k / 40.0)),
        "bat-1": 4000.0 * np.sin(k / 7.0),
        "bat-2": -3000.0 + 100.0 * (k % 13),
        "hp": 60_000.0 + 500.0 * (k % 11),
        "load": 150_000.0 + 1000.0 * (k % 17) + 0.25 * k,
        "it": 400_000.0 + 10.0 * k,
        "waste_heat_temp_c": 33.0 + 0.01 * k,
    }


def poll(k: int, at: datetime, offline: set[str] = frozenset()) -> Snapshot:  # type: ignore[assignment]
    f = flows(k)
    pv_w = {i: kwp * f["pv_w_per_kwp"] for i, kwp in PV_KWP.items()}
    # The meter sees what the load, the heat pump, PV and batteries leave over.
    grid_w = f["load"] + f["hp"] - sum(pv_w.values()) - f["bat-1"] - f["bat-2"]
    states = [state(i, "pv", pv(p), at, online=i not in offline) for i, p in pv_w.items()]
    states += [state(b, "battery", battery(f[b]), at) for b in ("bat-1", "bat-2")]
    states += [
        state("grid-meter", "meter", MeterReading(grid_w, 1e9, 1e8), at),
        state("hp", "heat_pump", HeatPumpReading(f["hp"], None, 3 * f["hp"], 30.0, 70.0), at),
        state("dc", "datacentre", DatacentreReading(f["it"], f["waste_heat_temp_c"], 50.0), at),
    ]
    return Snapshot(at, {s.id: s for s in states})


def record_day(
    rec: Recorder,
    make: Callable[[int, datetime], Snapshot] = poll,
    skip: Callable[[datetime], bool] = lambda at: False,
) -> list[tuple[int, datetime]]:
    """Polls every 5 minutes over the day, inputs for it (and an hour either side)."""
    polls = []
    k, at = 0, START
    while at < END:
        if not skip(at):
            rec.record_snapshot(make(k, at))
            polls.append((k, at))
        k, at = k + 1, at + EVERY
    index = pd.date_range(
        START - timedelta(hours=1),
        END + timedelta(hours=1),
        freq="15min",
        inclusive="left",
        name="time",
    )
    n = np.arange(len(index), dtype=float)
    rec.record_inputs(pd.DataFrame({
        "price_eur_per_mwh": 80.0 + n, "heat_w_per_mwh_a": 120.0 + n / 10,
        "outdoor_temp_c": 4.0 + n / 20, "co2_g_per_kwh": 350.0 + n,
    }, index=index))  # fmt: skip
    return polls


def read_exported(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """An exported inputs file: the schema table, and its ``filled`` marks ("" when the
    file has none)."""
    raw = read_raw_inputs(path)
    marks = raw.pop("filled").fillna("") if "filled" in raw.columns else None
    table = validate_inputs(raw, str(path))
    return table, (marks.set_axis(table.index) if marks is not None else pd.Series("", table.index))


def expected(polls: list[tuple[int, datetime]]) -> pd.DataFrame:
    """Quarter-hour means of the true per-kWp PV and load, computed from the flows alone."""
    rows = [
        {
            "time": pd.Timestamp(at).floor("15min"),
            "pv_w_per_kwp": flows(k)["pv_w_per_kwp"],
            "load_w_per_mwh_a": flows(k)["load"] / ANNUAL_MWH,
            "it_load_ratio": flows(k)["it"] / 500_000.0,
            "waste_heat_temp_c": flows(k)["waste_heat_temp_c"],
        }
        for k, at in polls
    ]
    return pd.DataFrame(rows).groupby("time").mean()


def test_export_round_trips_with_exact_pv_and_load(tmp_path: Path, site: Site) -> None:
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        polls = record_day(rec)
        path = export_day(rec, DAY, tmp_path / "out", site)
    got = read_inputs(path)
    want = expected(polls)
    assert path.name == "inputs_2026-03-29.csv"
    assert len(got) == 92 and got.index[0] == pd.Timestamp("2026-03-28T23:00Z")
    for column in want:
        np.testing.assert_allclose(got[column], want[column], rtol=1e-12, err_msg=column)
    n = np.arange(4, 96)  # inputs were recorded from an hour before the day
    np.testing.assert_allclose(got["price_eur_per_mwh"], 80.0 + n)
    np.testing.assert_allclose(got["heat_w_per_mwh_a"], 120.0 + n / 10)
    np.testing.assert_allclose(got["co2_g_per_kwh"], 350.0 + n)
    coverage = pd.read_csv(tmp_path / "out" / "coverage_2026-03-29.csv")
    assert (coverage["polls"] == 3).all() and (coverage["grid_polls"] == 3).all()
    assert (coverage["pv_kwp_share"] == 1.0).all() and coverage["filled"].isna().all()
    # A whole day is a plain schema file: no marks column.
    assert path.read_text().splitlines()[0].split(",")[-1] == "waste_heat_temp_c"


def test_an_offline_inverter_does_not_bias_pv_per_kwp(tmp_path: Path, site: Site) -> None:
    def with_pv3_offline(k: int, at: datetime) -> Snapshot:
        return poll(k, at, offline={"pv-3"} if k % 2 else set())

    with Recorder(tmp_path / "vpp.sqlite") as rec:
        polls = record_day(rec, with_pv3_offline)
        got = read_inputs(export_day(rec, DAY, tmp_path, site))
    want = expected(polls)
    # Every inverter makes the same W/kWp, so the reporting ones stand for the rest.
    np.testing.assert_allclose(got["pv_w_per_kwp"], want["pv_w_per_kwp"], rtol=1e-12)
    np.testing.assert_allclose(got["load_w_per_mwh_a"], want["load_w_per_mwh_a"], rtol=1e-12)
    coverage = pd.read_csv(tmp_path / "coverage_2026-03-29.csv")
    # pv-3 is away in every other poll: one or two of the three polls of a quarter hour.
    share = 16.2 / 36.2
    assert coverage["pv_kwp_share"].min() == pytest.approx((1 + 2 * share) / 3, abs=1e-4)
    assert coverage["pv_kwp_share"].max() == pytest.approx((2 + share) / 3, abs=1e-4)


def test_a_gap_is_interpolated_and_reported(tmp_path: Path, site: Site) -> None:
    gap = pd.Timestamp("2026-03-29T10:15Z")
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        record_day(rec, skip=lambda at: gap <= at < gap + timedelta(minutes=15))
        result = write_day(rec, DAY, tmp_path, site, allow_partial=True)
    got, marks = read_exported(result.inputs)
    before, after = got.loc[gap - timedelta(minutes=15)], got.loc[gap + timedelta(minutes=15)]
    assert got.loc[gap, "load_w_per_mwh_a"] == pytest.approx(
        (before["load_w_per_mwh_a"] + after["load_w_per_mwh_a"]) / 2
    )
    assert result.filled == {
        "pv_w_per_kwp": 1,
        "load_w_per_mwh_a": 1,
        "it_load_ratio": 1,
        "waste_heat_temp_c": 1,
    }
    assert result.filled_by["load_w_per_mwh_a"] == {"interpolated": 1}
    coverage = pd.read_csv(tmp_path / "coverage_2026-03-29.csv", parse_dates=["time"])
    row = coverage[coverage["time"] == gap].iloc[0]
    assert row["polls"] == 0 and "load_w_per_mwh_a=interpolated" in row["filled"]
    # The inputs file marks the filled values of that quarter hour, and only those.
    assert marks[gap] == (
        "pv_w_per_kwp=interpolated;load_w_per_mwh_a=interpolated;"
        "it_load_ratio=interpolated;waste_heat_temp_c=interpolated"
    )
    assert (marks.drop(gap) == "").all()


def test_a_gap_is_refused_without_allow_partial(tmp_path: Path, site: Site) -> None:
    gap = pd.Timestamp("2026-03-29T10:15Z")
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        record_day(rec, skip=lambda at: gap <= at < gap + timedelta(minutes=15))
        with pytest.raises(PartialDayError, match="1 of 92 quarter hours have no polls") as err:
            write_day(rec, DAY, tmp_path / "out", site)
    assert err.value.result.filled["pv_w_per_kwp"] == 1
    assert not (tmp_path / "out").exists()


def test_a_day_whose_snapshots_are_gone_exports_the_same(tmp_path: Path, site: Site) -> None:
    """Retention rolls the snapshots up before deleting them: half a day rolled up, then all
    of it, the export stays the same (measured columns, coverage, what was filled)."""
    gap = pd.Timestamp("2026-03-29T10:15Z")

    def with_pv3_offline(k: int, at: datetime) -> Snapshot:
        return poll(k, at, offline={"pv-3"} if k % 2 else set())

    def same(result: object, want: pd.DataFrame, cover: pd.DataFrame, where: Path) -> None:
        pd.testing.assert_frame_equal(read_exported(where / "inputs_2026-03-29.csv")[0], want)
        pd.testing.assert_frame_equal(pd.read_csv(where / "coverage_2026-03-29.csv"), cover)

    db = tmp_path / "vpp.sqlite"
    with Recorder(db, retention_days=30, snapshot_retention_days=1) as rec:
        record_day(rec, with_pv3_offline, skip=lambda at: gap <= at < gap + timedelta(minutes=15))
        first = write_day(rec, DAY, tmp_path / "raw", site, allow_partial=True)
        want = read_exported(first.inputs)[0]
        cover = pd.read_csv(tmp_path / "raw" / "coverage_2026-03-29.csv")
        # A day later, 12 h 7 min into the day: its first 12 h (48 quarter hours, one of them
        # without polls) are rolled up and their snapshots deleted, the rest is still raw.
        half = START + timedelta(days=1, hours=12, minutes=7)
        stats = apply_retention(rec, half, site)
        assert stats.rolled_up == 47
        assert stats.deleted["snapshots"] == 47 * 3 * len(site.devices)
        assert rec.first_poll_time() == START + timedelta(hours=12)
        again = write_day(rec, DAY, tmp_path / "half", site, allow_partial=True)
        assert again.filled == first.filled
        same(again, want, cover, tmp_path / "half")
        # Then the whole day; a second run at the same time has nothing left to do.
        later = END + timedelta(days=1, hours=2)
        assert apply_retention(rec, later, site).rolled_up == 92 - 47 - 1
        assert rec.poll_times(START, END).empty
        assert apply_retention(rec, later, site).rolled_up == 0
        rolled = write_day(rec, DAY, tmp_path / "rolled", site, allow_partial=True)
        same(rolled, want, cover, tmp_path / "rolled")
        # The rolled-up means go with the rest at the retention's end.
        apply_retention(rec, END + timedelta(days=31), site)
        assert rec.measured().empty
        with pytest.raises(ExportError, match="no snapshots recorded on 2026-03-29"):
            write_day(rec, DAY, tmp_path / "gone", site, allow_partial=True)


def test_without_the_site_old_snapshots_are_only_deleted(tmp_path: Path, site: Site) -> None:
    with Recorder(tmp_path / "vpp.sqlite", retention_days=30, snapshot_retention_days=1) as rec:
        record_day(rec)
        stats = rec.apply_retention(END + timedelta(days=2))
        assert stats.rolled_up == 0 and rec.measured().empty
        with pytest.raises(ExportError, match="no snapshots recorded"):
            write_day(rec, DAY, tmp_path, site)


def test_records_of_the_day_are_written_beside(tmp_path: Path, site: Site) -> None:
    inside, outside = START + timedelta(hours=5), START - timedelta(minutes=1)
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        record_day(rec)
        for at in (inside, outside):
            rec.record_setpoints([SetpointRecord(at, "bat-1", "battery_w", 1.0, 1.0, 1.0, True)])
            rec.record_event("warning", "poll", "offline", "bat-1 offline", "bat-1", time=at)
        result = write_day(rec, DAY, tmp_path, site)
    names = sorted(p.name for p in result.files)
    assert names == [
        "coverage_2026-03-29.csv",
        "events_2026-03-29.csv",
        "inputs_2026-03-29.csv",
        "plans_2026-03-29.csv",
        "setpoints_2026-03-29.csv",
    ]
    events = pd.read_csv(tmp_path / "events_2026-03-29.csv")
    assert list(events["time"]) == ["2026-03-29T04:00:00.000Z"]
    assert len(pd.read_csv(tmp_path / "setpoints_2026-03-29.csv")) == 1


def test_a_day_without_polls_is_an_error(tmp_path: Path, site: Site) -> None:
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        record_day(rec)
        with pytest.raises(ExportError, match="no snapshots recorded on 2026-03-30"):
            export_day(rec, date(2026, 3, 30), tmp_path, site)


def test_a_site_whose_devices_were_not_recorded_is_an_error(tmp_path: Path, site: Site) -> None:
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        record_day(rec)
        renamed = [d.model_copy(update={"id": f"x-{d.id}"}) for d in site.devices]
        grid = site.grid.model_copy(update={"meter": "x-grid-meter"})
        other = site.model_copy(update={"devices": renamed, "grid": grid})
        with pytest.raises(
            ExportError,
            match="none of the devices of site 'test district' was recorded on 2026-03-29",
        ):
            export_day(rec, DAY, tmp_path, other)


def test_a_day_without_prices_is_an_error(tmp_path: Path, site: Site) -> None:
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        rec.record_snapshot(poll(0, START))
        with pytest.raises(
            ExportError,
            match="nothing recorded for price_eur_per_mwh, heat_w_per_mwh_a, outdoor_temp_c",
        ):
            export_day(rec, DAY, tmp_path, site)


def test_cli_exports_a_recorded_day(tmp_path: Path, site_file: Path, site: Site) -> None:
    db = tmp_path / "vpp.sqlite"
    with Recorder(db) as rec:
        record_day(rec)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "export",
            "--config",
            str(site_file),
            "--db",
            str(db),
            "--day",
            "2026-03-29",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'inputs_2026-03-29.csv'}" in result.output
    assert len(read_inputs(out / "inputs_2026-03-29.csv")) == 92


def test_cli_fails_cleanly_for_a_day_without_data(tmp_path: Path, site_file: Path) -> None:
    db = tmp_path / "vpp.sqlite"
    with Recorder(db) as rec:
        rec.record_event("info", "t", "k", "m", time=START)
    result = CliRunner().invoke(
        app,
        [
            "export",
            "--config",
            str(site_file),
            "--db",
            str(db),
            "--day",
            "2026-03-29",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert "export 2026-03-29 failed" in result.output
    assert "no snapshots recorded on 2026-03-29" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_fails_cleanly_without_a_database(tmp_path: Path, site_file: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    result = CliRunner().invoke(
        app, ["export", "--config", str(site_file), "--db", str(missing), "--day", "2026-03-29"]
    )
    assert result.exit_code == 1
    assert "recorder database not found" in result.output
    assert not missing.exists()


#: A day of 96 quarter hours (2026-04-15 in Berlin: 2026-04-14T22:00Z .. 2026-04-15T22:00Z).
FULL_DAY = date(2026, 4, 15)


def record_two_quarter_hours(rec: Recorder) -> None:
    """Polls in two quarter hours only, 08:00 and 15:15 local (indices 32 and 61 of 96);
    inputs for the whole day, as the controller records them."""
    start, end = day_bounds(FULL_DAY, "Europe/Berlin")
    for q in (32, 61):
        for k in range(3):
            at = (start + pd.Timedelta(minutes=15 * q + 5 * k)).to_pydatetime()
            rec.record_snapshot(poll(3 * q + k, at))
    index = pd.date_range(start, end, freq="15min", inclusive="left", name="time")
    n = np.arange(len(index), dtype=float)
    rec.record_inputs(pd.DataFrame({
        "price_eur_per_mwh": 80.0 + n, "heat_w_per_mwh_a": 120.0 + n / 10,
        "outdoor_temp_c": 4.0 + n / 20,
    }, index=index))  # fmt: skip


def export_args(site_file: Path, db: Path, out: Path, *more: str) -> list[str]:
    return [
        "export", "--config", str(site_file), "--db", str(db), "--day", str(FULL_DAY),
        "--out", str(out), *more,
    ]  # fmt: skip


def test_cli_refuses_a_partial_day(tmp_path: Path, site_file: Path) -> None:
    db = tmp_path / "vpp.sqlite"
    with Recorder(db) as rec:
        record_two_quarter_hours(rec)
    result = CliRunner().invoke(app, export_args(site_file, db, tmp_path / "out"))
    assert result.exit_code == 1
    assert "export 2026-04-15 refused: " in result.output
    assert "94 of 96 quarter hours have no polls" in result.output
    assert "pv_w_per_kwp: 94 of 96 quarter hours filled (66 held, 28 interpolated)" in (
        result.output
    )
    assert "--allow-partial" in result.output
    assert "[bold red]" not in result.output and "[/]" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_exports_a_partial_day_marked_and_data_check_reports_it(
    tmp_path: Path, site_file: Path
) -> None:
    db, out = tmp_path / "vpp.sqlite", tmp_path / "out"
    with Recorder(db) as rec:
        record_two_quarter_hours(rec)
    result = CliRunner().invoke(app, export_args(site_file, db, out, "--allow-partial"))
    assert result.exit_code == 0, result.output
    assert "94 of 96 quarter hours without polls" in result.output
    assert "pv_w_per_kwp: 94 of 96 quarter hours filled (66 held, 28 interpolated)" in (
        result.output
    )
    path = out / "inputs_2026-04-15.csv"
    table, marks = read_exported(path)
    assert len(table) == 96
    measured = table.index[[32, 61]]
    assert (marks[measured] == "").all()
    assert (
        marks.iloc[0]
        == marks.iloc[95]
        == ("pv_w_per_kwp=held;load_w_per_mwh_a=held;it_load_ratio=held;waste_heat_temp_c=held")
    )
    assert marks.iloc[40] == (
        "pv_w_per_kwp=interpolated;load_w_per_mwh_a=interpolated;"
        "it_load_ratio=interpolated;waste_heat_temp_c=interpolated"
    )
    # Held values repeat the nearest measured one; interpolated ones lie between.
    pv = table["pv_w_per_kwp"]
    assert (pv.iloc[:32] == pv.iloc[32]).all() and (pv.iloc[62:] == pv.iloc[61]).all()
    # The inputs table was recorded for every quarter hour: nothing of it is marked.
    assert not marks.str.contains("price_eur_per_mwh").any()
    check = CliRunner().invoke(app, ["data", "check", str(path)])
    assert check.exit_code == 1
    for column in ("pv_w_per_kwp", "load_w_per_mwh_a", "it_load_ratio", "waste_heat_temp_c"):
        assert f"{column}: 66 value(s) held, not measured, first at 2026-04-14T22:00Z" in (
            check.output
        )
        assert f"{column}: 28 value(s) interpolated, not measured, first at 2026-04-15T06:15Z" in (
            check.output
        )


def test_data_check_passes_a_whole_exported_day(tmp_path: Path, site_file: Path) -> None:
    db = tmp_path / "vpp.sqlite"
    with Recorder(db) as rec:
        record_day(rec)
    out = tmp_path / "out"
    args = ["export", "--config", str(site_file), "--db", str(db), "--day", str(DAY)]
    assert CliRunner().invoke(app, [*args, "--out", str(out)]).exit_code == 0
    check = CliRunner().invoke(app, ["data", "check", str(out / "inputs_2026-03-29.csv")])
    assert check.exit_code == 0, check.output
    assert "no problems" in check.output
