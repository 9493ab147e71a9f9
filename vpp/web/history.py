"""The operator page's last hours after a restart, read back from the recorder.

:class:`~vpp.web.watch.Watch` builds its quarter hours from the polls it sees, so after a
restart the plan-versus-actual chart would start empty. At start-up
:func:`recorded_quarters` rebuilds the same quarter hours from what the recorder holds: the
electric totals summed per poll in SQL (:meth:`Recorder.poll_totals`), the heat pump's thermal
power and the data centre's waste heat from the readings of those two devices, and for each
quarter hour the values of the last recorded plan made before its end that covers it (the plan
in force when the quarter ended, the one the live Watch compares against).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from vpp.core.clock import floor_quarter
from vpp.data.schema import STEP
from vpp.web.views import HISTORY_STEPS
from vpp.web.watch import QuarterHour, Watch, planned_totals

if TYPE_CHECKING:
    from vpp.core.site import Site
    from vpp.recorder import Recorder

#: Plans made this long before the first quarter hour may still be in force in it.
PLAN_LOOKBACK = timedelta(hours=2)
#: Reading fields of the thermal totals: (device kind, field, total).
_THERMAL = (
    ("heat_pump", "th_power_w", "heat_pump_th_w"),
    ("datacentre", "waste_heat_w", "waste_heat_th_w"),
)


def seed_watch(watch: Watch, rec: Recorder, site: Site, now: datetime) -> int:
    """Give ``watch`` the recorded quarter hours of the page's history window before ``now``
    (the current quarter hour included, so it goes on adding up); returns how many."""
    start = floor_quarter(now) - HISTORY_STEPS * STEP
    return watch.seed(recorded_quarters(rec, site, start, now))


def recorded_quarters(
    rec: Recorder, site: Site, start: datetime, end: datetime
) -> dict[datetime, QuarterHour]:
    """The Watch's quarter hours for polls in ``[start, end)`` (``start`` on a quarter hour)."""
    quarters: dict[datetime, QuarterHour] = {}
    totals = rec.poll_totals(start, end, _groups(site))
    totals = totals[totals["power_w"].notna()]
    sums = totals.groupby([totals["time"].dt.floor(STEP), "group"])["power_w"].agg(["sum", "size"])
    keys: list[tuple[pd.Timestamp, str]] = list(sums.index)
    for (quarter, name), total, n in zip(keys, sums["sum"], sums["size"], strict=True):
        _add(quarters, pd.Timestamp(quarter), str(name), float(total), int(n))
    for kind, field, name in _THERMAL:
        device = site.heat_pump if kind == "heat_pump" else site.datacentre
        if device is None:
            continue
        rows = rec.snapshots_frame(start, end, devices=[device.id], with_json=True)
        rows = rows[rows["online"].astype(bool) & rows["reading"].notna()]
        times = pd.DatetimeIndex(rows["time"])
        values = pd.Series(
            [json.loads(r).get(field) for r in rows["reading"]], index=times, dtype="float64"
        ).dropna()
        floors = pd.DatetimeIndex(values.index).floor(STEP)
        for quarter, group in values.groupby(floors):
            _add(quarters, pd.Timestamp(quarter), name, float(group.sum()), len(group))
    _plans(rec, quarters, start, end)
    return dict(sorted(quarters.items()))


def _groups(site: Site) -> dict[str, tuple[str, float]]:
    groups = {p.id: ("pv_w", 0.0) for p in site.pv}
    groups |= {b.id: ("battery_w", 0.0) for b in site.batteries}
    if site.grid.meter is not None:
        groups[site.grid.meter] = ("grid_w", 0.0)
    if site.heat_pump is not None:
        groups[site.heat_pump.id] = ("heat_pump_el_w", 0.0)
    return groups


def _add(
    quarters: dict[datetime, QuarterHour], quarter: pd.Timestamp, name: str, total: float, n: int
) -> None:
    q = quarters.setdefault(quarter.to_pydatetime(), QuarterHour())
    q.sums[name] = q.sums.get(name, 0.0) + total
    q.counts[name] = q.counts.get(name, 0) + n


def _plans(
    rec: Recorder, quarters: dict[datetime, QuarterHour], start: datetime, end: datetime
) -> None:
    plans = rec.plan_frames(start - PLAN_LOOKBACK, end)
    for when, quarter in quarters.items():
        t = pd.Timestamp(when)
        made = [frame for created, frame in plans if created < when + STEP and t in frame.index]
        if made:
            row = made[-1].loc[t]
            if isinstance(row, pd.Series):
                quarter.planned = planned_totals(row)
