"""After a restart the page's quarter hours come back from the recorder as the live Watch had
them: measured means (a device offline now and then, a quarter hour without polls) and the
values of the plan in force when each quarter ended (a new plan in the middle of one)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.vpp.recorder.test_export import SITE_TOML, poll
from vpp.control.state import ControllerState
from vpp.core.site import parse_site
from vpp.recorder import Recorder
from vpp.web.history import recorded_quarters, seed_watch
from vpp.web.views import HISTORY_STEPS, plan_view
from vpp.web.watch import Watch

T0 = datetime(2026, 6, 21, 8, 0, tzinfo=UTC)
EVERY = timedelta(minutes=5)
COLUMNS = ("pv_w", "battery_w", "heat_pump_el_w", "heat_pump_th_w", "waste_heat_th_w")


@dataclass
class _Plan:
    frame: pd.DataFrame
    info: dict[str, Any] = field(default_factory=lambda: {"status": "optimal"})


def _plan(first: datetime, scale: float) -> _Plan:
    index = pd.date_range(first, periods=16, freq="15min", name="time")
    n = np.arange(len(index), dtype=float)
    data = {c: scale * (1000.0 * (i + 1) + n) for i, c in enumerate(COLUMNS)}
    data |= {"grid_import_w": scale * (5000.0 + n), "grid_export_w": scale * 100.0 * n}
    return _Plan(pd.DataFrame(data, index=index))


def test_recorded_quarters_equal_what_the_watch_saw(tmp_path: Path) -> None:
    site = parse_site(tomllib.loads(SITE_TOML), "test")
    state = ControllerState(site=site, started_at=T0, dry_run=False)
    live = Watch(state)
    first, second = _plan(T0, 1.0), _plan(T0 + timedelta(minutes=45), 2.0)
    switch = T0 + timedelta(minutes=47)  # the second plan arrives inside a quarter hour
    gap = T0 + timedelta(minutes=75)  # no polls in this quarter hour
    end = T0 + timedelta(hours=2, minutes=10)  # the last quarter hour still running
    with Recorder(tmp_path / "vpp.sqlite") as rec:
        rec.record_plan(first, T0 - timedelta(minutes=1))
        state.plan = first  # type: ignore[assignment]
        k, at = 0, T0
        while at < end:
            if at >= switch and state.plan is first:
                rec.record_plan(second, switch)
                state.plan = second  # type: ignore[assignment]
            if not gap <= at < gap + timedelta(minutes=15):
                snap = poll(k, at, offline={"pv-3", "hp"} if k % 3 == 1 else set())
                rec.record_snapshot(snap)
                state.snapshot = snap
                live.sample(at)
            k, at = k + 1, at + EVERY
        rebuilt = recorded_quarters(rec, site, T0, end)
        fresh = Watch(ControllerState(site=site, started_at=end, dry_run=False))
        assert seed_watch(fresh, rec, site, end) == len(live.quarters) == 8
    assert list(rebuilt) == list(live.quarters)
    assert pd.Timestamp(gap).to_pydatetime() not in rebuilt
    for when, quarter in live.quarters.items():
        got = rebuilt[when]
        assert got.counts == quarter.counts, when
        assert got.means() == pytest.approx(quarter.means(), rel=1e-12), when
        assert got.planned == pytest.approx(quarter.planned, rel=1e-12), when
    # The quarter hour with the switch is judged against the second plan, as it was live.
    assert rebuilt[T0 + timedelta(minutes=45)].planned["pv_w"] == 2 * 1000.0
    # The restarted page shows the same history as the one that ran before.
    state.plan = None
    want = plan_view(state, live, end)["history"]
    got_view = plan_view(fresh.state, fresh, end)["history"]
    assert 0 < len(want) <= HISTORY_STEPS and len(got_view) == len(want)
    for mine, theirs in zip(got_view, want, strict=True):
        assert mine["start"] == theirs["start"]
        assert mine["actual"] == pytest.approx(theirs["actual"], rel=1e-12)
        assert mine["planned"] == pytest.approx(theirs["planned"], rel=1e-12)
