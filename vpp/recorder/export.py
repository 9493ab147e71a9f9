"""Export a recorded day in the input schema that replay reads, plus CSVs for engineers.

The day is the site's local calendar day (``site.timezone``, midnight to midnight: 92, 96 or
100 quarter hours) as UTC quarter hours. Files written to ``out_dir``:

- ``inputs_<day>.csv``: the :mod:`vpp.data.schema` table, written by ``write_inputs``;
- ``coverage_<day>.csv``: per quarter hour, polls recorded, polls with a grid-meter reading,
  share of PV capacity reporting, and the columns filled or clipped there;
- ``plans_<day>.csv``, ``setpoints_<day>.csv``, ``events_<day>.csv``: what was recorded.

Where each input column comes from (a measured value wins over the ``inputs`` table):

- ``pv_w_per_kwp`` = mean over the quarter hour's polls of
  ``sum(ac power of online PV) / sum(kWp of those PV)``: with every inverter online this is
  the site's PV power over its installed kWp; an offline inverter is left out of both sums,
  so the reporting ones stand for it (rather than counting it as producing nothing).
- ``load_w_per_mwh_a`` = mean over polls of ``load_w / (grid.base_load_annual_wh / 1e6)``,
  ``load_w = grid_w + pv_w + battery_w - heat_pump_el_w`` (signs of docs/architecture.md: grid
  > 0 imports, battery > 0 discharges), where ``pv_w = pv_w_per_kwp x site kWp``,
  ``battery_w`` sums the online batteries (an offline one counts 0) and a poll without a
  grid-meter or heat-pump reading is left out. Unmetered consumers behind the grid meter
  (the dry coolers) end up in this load.
- ``it_load_ratio`` = data-centre IT power / its nominal ``it_power_w``;
  ``waste_heat_temp_c`` = its measured cooling-water temperature.
- ``price_eur_per_mwh``, ``heat_w_per_mwh_a``, ``outdoor_temp_c``, ``co2_g_per_kwh``,
  irradiance: from the ``inputs`` table (what was known then).

Where the snapshots are gone (``run.snapshot_retention_days``), the measured columns and the
coverage come from the quarter-hour means that retention rolled up before deleting them
(:func:`roll_up`, the ``measured`` table): the same figures, computed the same way.

Gaps inside the day are filled by linear interpolation in time (by the nearest value at the
edges); values outside the schema's range are clipped. Both are listed in the coverage file.
A day without polls, or without any value of a required column, raises ExportError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from vpp.core.site import DeviceKind, Site
from vpp.data.schema import REQUIRED, SCHEMA, STEP, write_inputs

if TYPE_CHECKING:
    from vpp.recorder.store import Recorder

#: Times in the engineers' CSV files (cut to milliseconds): UTC.
CSV_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class ExportError(ValueError):
    """A day that cannot be exported; the message says what is missing."""


@dataclass
class ExportResult:
    """Files written by :func:`write_day` and how much of the day was filled in."""

    inputs: Path
    files: list[Path] = field(default_factory=list)
    quarter_hours: int = 0
    #: Quarter hours per column whose value was interpolated.
    filled: dict[str, int] = field(default_factory=dict)
    clipped: dict[str, int] = field(default_factory=dict)


def day_bounds(day: date, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start and end of a local calendar day (local midnight is never ambiguous here)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")


def export_day(rec: Recorder, day: date, out_dir: str | Path, site: Site) -> Path:
    """Write ``inputs_<day>.csv`` and its companions; return the inputs file's path."""
    return write_day(rec, day, out_dir, site).inputs


def write_day(rec: Recorder, day: date, out_dir: str | Path, site: Site) -> ExportResult:
    """:func:`export_day` with the list of files and what was filled or clipped."""
    start, end = day_bounds(day, site.site.timezone)
    quarters = pd.date_range(start, end, freq=STEP, inclusive="left", name="time")
    try:
        fresh = quarter_means(rec, site, quarters)
    except ExportError:
        raise ExportError(
            f"{rec.path}: none of the devices of site {site.site.name!r} was "
            f"recorded on {day} (another site file?)"
        ) from None
    rolled = rec.measured(start, end).reindex(quarters)
    if fresh is None and not (rolled["polls"] > 0).any():
        raise ExportError(f"{rec.path}: no snapshots recorded on {day} ({site.site.timezone})")
    # Snapshots where they are still there, the rolled-up means where they are gone.
    both = rolled if fresh is None else fresh[fresh["polls"] > 0].combine_first(rolled)
    both = both.reindex(quarters)
    coverage = pd.DataFrame(index=quarters)
    for name in ("polls", "grid_polls"):
        coverage[name] = both[name].fillna(0).astype(int)
    coverage["pv_kwp_share"] = both["pv_kwp_share"].round(4)
    measured = both[[c for c in measured_columns(site) if c in both]]
    table = measured.combine_first(rec.inputs(start, end).reindex(quarters))
    table = table[[c.name for c in SCHEMA if c.name in table]]
    table, filled = _fill(table, day)
    table, clipped = _clip(table)
    coverage["filled"] = _mask_names(filled)
    coverage["clipped"] = _mask_names(clipped)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(
        inputs=write_inputs(table, out / f"inputs_{day}.csv"),
        quarter_hours=len(quarters),
        filled=_counts(filled),
        clipped=_counts(clipped),
    )
    result.files = [
        result.inputs,
        _csv(coverage.reset_index(), out / f"coverage_{day}.csv"),
        *_records(rec, day, start, end, out),
    ]
    return result


def measured_columns(site: Site) -> list[str]:
    """The input columns this site measures (the rest come from the ``inputs`` table)."""
    names = []
    if site.pv:
        names.append("pv_w_per_kwp")
    if site.grid.base_load_annual_wh > 0:
        names.append("load_w_per_mwh_a")
    if site.datacentre is not None:
        names += ["it_load_ratio", "waste_heat_temp_c"]
    return names


def quarter_means(rec: Recorder, site: Site, quarters: pd.DatetimeIndex) -> pd.DataFrame | None:
    """Per quarter hour of ``quarters``, from the snapshots: polls recorded, polls with a
    grid-meter reading, share of PV kWp reporting and the measured input columns; None if
    no poll was recorded in them. Raises ExportError if polls were recorded but none of
    the site's devices are in them (another site file?)."""
    start, end = quarters[0], quarters[-1] + STEP
    polls = rec.poll_times(start, end)
    if polls.empty:
        return None
    totals = rec.poll_totals(start, end, groups(site))
    if totals.empty:
        raise ExportError(
            f"{rec.path}: none of the devices of site {site.site.name!r} was "
            f"recorded from {start.isoformat()} to {end.isoformat()} (another site file?)"
        )
    measured, coverage = measured_inputs(rec, site, totals, quarters)
    counts = polls.groupby(polls.dt.floor(STEP)).size().reindex(quarters, fill_value=0)
    return pd.concat([coverage.assign(polls=counts), measured], axis=1)


#: Quarter hours rolled up per read of the snapshots (bounds the memory of one read).
ROLL_UP_CHUNK = pd.Timedelta(hours=6)


def roll_up(rec: Recorder, site: Site, until: datetime) -> int:
    """Store the quarter-hour means of every quarter hour before ``until`` that has
    snapshots and is not rolled up yet (the ``measured`` table); returns how many.

    Called by retention before it deletes snapshots, so a day whose snapshots are gone still
    exports the same measured columns and coverage. Quarter hours whose snapshots hold none
    of the site's devices are skipped.
    """
    first = rec.first_poll_time()
    if first is None:
        return 0
    last = rec.last_measured_time()
    begin = pd.Timestamp(first).floor(STEP)
    if last is not None:
        begin = max(begin, pd.Timestamp(last) + STEP)
    stop = pd.Timestamp(until).floor(STEP)
    written = 0
    for i in range(max(0, int(np.ceil((stop - begin) / ROLL_UP_CHUNK)))):
        lo = begin + i * ROLL_UP_CHUNK
        hi = min(lo + ROLL_UP_CHUNK, stop)
        quarters = pd.date_range(lo, hi, freq=STEP, inclusive="left", name="time")
        try:
            frame = quarter_means(rec, site, quarters)
        except ExportError:
            continue
        if frame is not None:
            written += rec.record_measured(frame[frame["polls"] > 0])
    return written


def groups(site: Site) -> dict[str, tuple[str, float]]:
    """Device id -> (group, weight) for the totals; PV weighted by kWp."""
    found: dict[str, tuple[str, float]] = {p.id: ("pv", p.dc_peak_w / 1000) for p in site.pv}
    found |= {b.id: ("battery", 0.0) for b in site.batteries}
    meter = site.grid.meter or next((m.id for m in site.of_kind(DeviceKind.METER)), None)
    if meter is not None:
        found[meter] = ("grid", 0.0)
    for name, device in (("heat_pump", site.heat_pump), ("datacentre", site.datacentre)):
        if device is not None:
            found[device.id] = (name, 0.0)
    return found


def per_poll(totals: pd.DataFrame, site: Site) -> pd.DataFrame:
    """Per poll: pv_w_per_kwp, load_w [W], it_load_ratio, from the groups' totals."""
    power = totals.pivot_table(index="poll", columns="group", values="power_w", aggfunc="sum")
    weight = totals.pivot_table(index="poll", columns="group", values="weight", aggfunc="sum")
    out = pd.DataFrame(index=power.index)
    out["time"] = totals.groupby("poll")["time"].first()
    nan = pd.Series(np.nan, index=power.index)
    site_kwp = sum(p.dc_peak_w for p in site.pv) / 1000
    if site_kwp > 0:
        out["pv_w_per_kwp"] = power.get("pv", nan) / weight.get("pv", nan).replace(0.0, np.nan)
    pv_w = out["pv_w_per_kwp"] * site_kwp if site_kwp > 0 else 0.0
    battery_w = power.get("battery", nan).fillna(0.0)
    heat_pump_w = power.get("heat_pump", nan) if site.heat_pump is not None else 0.0
    out["load_w"] = power.get("grid", nan) + pv_w + battery_w - heat_pump_w
    if site.datacentre is not None:
        out["it_load_ratio"] = power.get("datacentre", nan) / site.datacentre.it_power_w
    out["pv_kwp_share"] = weight.get("pv", nan) / site_kwp if site_kwp > 0 else np.nan
    out["grid_ok"] = power.get("grid", nan).notna()
    return out


def measured_inputs(
    rec: Recorder, site: Site, totals: pd.DataFrame, quarters: pd.DatetimeIndex
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quarter-hour means of the measured columns, and the coverage table.

    ``totals`` are the day's :meth:`Recorder.poll_totals` over the groups of :func:`groups`.
    """
    start, end = quarters[0], quarters[-1] + STEP
    polls = per_poll(totals, site)
    quarter = polls.groupby(polls["time"].dt.floor(STEP))
    means = quarter.mean(numeric_only=True).reindex(quarters)
    table = pd.DataFrame(index=quarters)
    annual_mwh = site.grid.base_load_annual_wh / 1e6
    if "pv_w_per_kwp" in means:
        table["pv_w_per_kwp"] = means["pv_w_per_kwp"]
    if annual_mwh > 0:
        table["load_w_per_mwh_a"] = means["load_w"] / annual_mwh
    if "it_load_ratio" in means:
        table["it_load_ratio"] = means["it_load_ratio"]
    if site.datacentre is not None:
        table["waste_heat_temp_c"] = _waste_heat_temp(rec, site.datacentre.id, start, end, quarters)
    coverage = pd.DataFrame(index=quarters)
    meter_polls = quarter["grid_ok"].sum().reindex(quarters, fill_value=0)
    coverage["grid_polls"] = meter_polls.astype(int)
    coverage["pv_kwp_share"] = means["pv_kwp_share"].round(4)
    return table, coverage


def _waste_heat_temp(
    rec: Recorder, device: str, start: pd.Timestamp, end: pd.Timestamp, quarters: pd.DatetimeIndex
) -> pd.Series:
    rows = rec.snapshots_frame(start, end, devices=[device], with_json=True)
    rows = rows[rows["online"] & rows["reading"].notna()]
    temps = [json.loads(r).get("waste_heat_temp_c") for r in rows["reading"]]
    times = pd.DatetimeIndex(rows["time"])
    series = pd.Series(temps, index=times, dtype="float64")
    return series.groupby(times.floor(STEP)).mean().reindex(quarters)


def _fill(table: pd.DataFrame, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interpolate gaps; drop optional columns never recorded; error on missing required."""
    empty = [str(c) for c in table.columns if table[c].isna().all()]
    missing = [c for c in REQUIRED if c not in table or c in empty]
    if missing:
        raise ExportError(
            f"{day}: nothing recorded for {', '.join(missing)} (the inputs "
            "table or the devices they are measured from)"
        )
    table = table.drop(columns=empty)
    gaps = table.isna()
    filled = table.interpolate(method="time", limit_area="inside").ffill().bfill()
    return filled, gaps


def _clip(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    bounds = {c.name: (c.min, c.max) for c in SCHEMA if c.name in table}
    lower = pd.Series({k: v[0] for k, v in bounds.items()})
    upper = pd.Series({k: v[1] for k, v in bounds.items()})
    outside = table.lt(lower, axis=1) | table.gt(upper, axis=1)
    return table.clip(lower=lower, upper=upper, axis=1), outside


def _mask_names(mask: pd.DataFrame) -> pd.Series:
    names = np.where(mask.to_numpy(), np.array(mask.columns, dtype=object) + ";", "")
    return pd.Series(["".join(row).rstrip(";") for row in names], index=mask.index)


def _counts(mask: pd.DataFrame) -> dict[str, int]:
    return {str(c): int(n) for c, n in mask.sum().items() if n}


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            # Recorded times are whole milliseconds: 2026-03-29T04:00:00.000Z.
            out[name] = out[name].dt.strftime(CSV_TIME).str[:-4] + "Z"
    out.to_csv(path, index=False)
    return path


def _records(
    rec: Recorder, day: date, start: pd.Timestamp, end: pd.Timestamp, out: Path
) -> list[Path]:
    frames: dict[str, Any] = {
        "plans": rec.plans(start, end),
        "setpoints": rec.setpoints(start, until=end),
        "events": rec.events(start, None, until=end),
    }
    return [_csv(frame, out / f"{name}_{day}.csv") for name, frame in frames.items()]
