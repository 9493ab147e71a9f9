"""Export a recorded day in the input schema that replay reads, plus CSVs for engineers.

The day is the site's local calendar day (``site.timezone``, midnight to midnight: 92, 96 or
100 quarter hours) as UTC quarter hours. Files written to ``out_dir``:

- ``inputs_<day>.csv``: the :mod:`vpp.data.schema` table, written by ``write_inputs``; for a
  partial day (below) one more column, ``filled``;
- ``coverage_<day>.csv``: per quarter hour, polls recorded, polls with a grid-meter reading,
  share of PV capacity reporting, and the columns filled (``column=how``) or clipped there;
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

A day is *partial* when a quarter hour has no polls or a value of the table is missing
(nothing measured there and nothing in the ``inputs`` table). A partial day raises
:class:`PartialDayError` and writes nothing, unless ``allow_partial``: then the gaps are filled,
``interpolated`` linearly in time between measured values, or ``held`` at the nearest measured
value before the first or after the last one, and every filled value is marked in the
``filled`` column of ``inputs_<day>.csv`` as ``column=how`` pairs joined by ``;`` (empty where
the row was measured), e.g. ``pv_w_per_kwp=held;load_w_per_mwh_a=held``. ``vpp data check``
reports them. The input schema has no such column: drop it (and know what you replay) before
a replay reads the file. Values outside the schema's range are clipped and listed in the
coverage file. A day without polls, or without any value of a required column, raises
ExportError.
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
from vpp.data.schema import (
    CSV_TIME_FORMAT,
    REQUIRED,
    SCHEMA,
    STEP,
    validate_inputs,
    write_inputs,
)

if TYPE_CHECKING:
    from vpp.recorder.retention import RetentionStats
    from vpp.recorder.store import Recorder

#: Times in the engineers' CSV files (cut to milliseconds): UTC.
CSV_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


#: The column of ``inputs_<day>.csv`` that marks filled values (partial days only).
FILLED_COLUMN = "filled"
#: How a missing value was filled.
INTERPOLATED, HELD = "interpolated", "held"


class ExportError(ValueError):
    """A day that cannot be exported; the message says what is missing."""


class PartialDayError(ExportError):
    """A day with quarter hours missing; ``result`` tells what would have been filled."""

    def __init__(self, message: str, result: ExportResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ExportResult:
    """Files written by :func:`write_day` and how much of the day was filled in."""

    inputs: Path
    files: list[Path] = field(default_factory=list)
    quarter_hours: int = 0
    #: Quarter hours per column whose value was filled (interpolated or held).
    filled: dict[str, int] = field(default_factory=dict)
    #: The same by how: column -> {"interpolated": n, "held": n}.
    filled_by: dict[str, dict[str, int]] = field(default_factory=dict)
    clipped: dict[str, int] = field(default_factory=dict)
    #: Quarter hours of the day without any poll.
    without_polls: int = 0

    @property
    def partial(self) -> bool:
        """Some quarter hour had no polls or some value had to be filled."""
        return self.without_polls > 0 or bool(self.filled)

    def describe_filled(self) -> list[str]:
        """One line per filled column, e.g. ``pv_w_per_kwp: 94 of 96 quarter hours filled
        (66 held, 28 interpolated)``."""
        lines = []
        for column, n in self.filled.items():
            counts = _by_how(self.filled_by.get(column, {}))
            how = ", ".join(f"{count} {method}" for count, method in counts)
            lines.append(f"{column}: {n} of {self.quarter_hours} quarter hours filled ({how})")
        return lines


def day_bounds(day: date, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start and end of a local calendar day (local midnight is never ambiguous here)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")


def export_day(
    rec: Recorder, day: date, out_dir: str | Path, site: Site, *, allow_partial: bool = False
) -> Path:
    """Write ``inputs_<day>.csv`` and its companions; return the inputs file's path."""
    return write_day(rec, day, out_dir, site, allow_partial=allow_partial).inputs


def write_day(
    rec: Recorder, day: date, out_dir: str | Path, site: Site, *, allow_partial: bool = False
) -> ExportResult:
    """:func:`export_day` with the list of files and what was filled or clipped.

    Raises :class:`PartialDayError` (and writes nothing) for a partial day unless
    ``allow_partial``; see the module docstring."""
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
    table, how = _fill(table, day)
    table, clipped = _clip(table)
    marks = _marks(how)
    coverage["filled"] = marks
    coverage["clipped"] = _mask_names(clipped)
    out = Path(out_dir)
    result = ExportResult(
        inputs=out / f"inputs_{day}.csv",
        quarter_hours=len(quarters),
        filled=_counts(how != ""),
        filled_by={str(c): _how_counts(how[c]) for c in how.columns if (how[c] != "").any()},
        clipped=_counts(clipped),
        without_polls=int((coverage["polls"] == 0).sum()),
    )
    if result.partial and not allow_partial:
        raise PartialDayError(_partial_message(rec, day, site, result), result)
    out.mkdir(parents=True, exist_ok=True)
    if result.filled:
        _write_marked(table, marks, result.inputs)
    else:
        write_inputs(table, result.inputs)
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


def apply_retention(
    rec: Recorder, now: datetime | None = None, site: Site | None = None
) -> RetentionStats:
    """The recorder's retention (:meth:`Recorder.apply_retention`); with ``site``, the
    snapshots about to go are first rolled up (:func:`roll_up`), so their days still
    export."""
    if site is None:
        return rec.apply_retention(now)
    return rec.apply_retention(now, roll_up=lambda cutoff: roll_up(rec, site, cutoff))


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
    """Interpolate gaps inside, hold the nearest value at the edges; drop optional columns
    never recorded; error on missing required. Returns the table and, per value, how it was
    filled (``"interpolated"``, ``"held"``, or ``""`` where it was recorded)."""
    empty = [str(c) for c in table.columns if table[c].isna().all()]
    missing = [c for c in REQUIRED if c not in table or c in empty]
    if missing:
        raise ExportError(
            f"{day}: nothing recorded for {', '.join(missing)} (the inputs "
            "table or the devices they are measured from)"
        )
    table = table.drop(columns=empty)
    gaps = table.isna()
    inside = table.interpolate(method="time", limit_area="inside")
    held = inside.isna()
    how = pd.DataFrame("", index=table.index, columns=table.columns, dtype=object)
    how = how.mask(gaps & ~held, INTERPOLATED).mask(held, HELD)
    return inside.ffill().bfill(), how


def _clip(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    bounds = {c.name: (c.min, c.max) for c in SCHEMA if c.name in table}
    lower = pd.Series({k: v[0] for k, v in bounds.items()})
    upper = pd.Series({k: v[1] for k, v in bounds.items()})
    outside = table.lt(lower, axis=1) | table.gt(upper, axis=1)
    return table.clip(lower=lower, upper=upper, axis=1), outside


def _marks(how: pd.DataFrame) -> pd.Series:
    """Per row, ``column=how`` of every filled value joined by ``;`` (empty: none)."""
    rows = how.to_numpy()
    names = [str(c) for c in how.columns]
    return pd.Series(
        [";".join(f"{n}={h}" for n, h in zip(names, row, strict=True) if h) for row in rows],
        index=how.index,
        dtype=object,
    )


def read_marks(marks: pd.Series) -> pd.DataFrame:
    """The ``filled`` column of an exported file back as a table: one column per input
    column that has filled values, holding how (``"interpolated"``, ``"held"``) or ``""``."""
    text = marks.fillna("").astype(str)
    rows: list[dict[str, str]] = []
    for cell in text:
        pairs = (part.partition("=") for part in cell.split(";") if part.strip())
        rows.append({name.strip(): how.strip() or "filled" for name, _, how in pairs})
    return pd.DataFrame(rows, index=marks.index, dtype=object).fillna("")


def _how_counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column[column != ""].value_counts().sort_index().items()}


def _by_how(counts: dict[str, int]) -> list[tuple[int, str]]:
    return sorted(((n, how) for how, n in counts.items()), key=lambda item: (-item[0], item[1]))


def _partial_message(rec: Recorder, day: date, site: Site, result: ExportResult) -> str:
    parts = []
    if result.without_polls:
        parts.append(
            f"{result.without_polls} of {result.quarter_hours} quarter hours have no polls"
        )
    if result.filled:
        parts.append("missing values: " + "; ".join(result.describe_filled()))
    return f"{rec.path}: {day} ({site.site.timezone}) is partial: " + "; ".join(parts)


def _write_marked(table: pd.DataFrame, marks: pd.Series, path: Path) -> Path:
    """The schema table (validated as ``write_inputs`` does) plus the ``filled`` column."""
    checked = validate_inputs(table, str(path))
    checked[FILLED_COLUMN] = marks.to_numpy()
    checked.to_csv(path, date_format=CSV_TIME_FORMAT)
    return path


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
