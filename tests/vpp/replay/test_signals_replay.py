"""Replay applies the grid-operator rules and a file of recorded signals, with the same
controller code as the live run: the plant model's PV output keeps every cap."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.vpp.replay.conftest import SAMPLE_DAYS
from vpp.core.site import Site
from vpp.replay import plant
from vpp.replay.baselines import (
    BOUND,
    CONTROLLER,
    NO_CONTROL,
    ORACLE,
    SELF_CONSUMPTION,
    STRATEGIES,
    run_rule_strategy,
    signal_limits,
)
from vpp.replay.bound import Bound
from vpp.replay.drive import day_trace, run_controller
from vpp.replay.layout import plant_inputs, plant_params
from vpp.replay.runner import DayJob, ReplayOptions, day_index, raw_window, replay_day
from vpp.signals import Signal, SignalError, SignalKind
from vpp.signals.recorded import parse_signals, read_signals, write_signals
from vpp.signals.rules import FLOOR_14A_W

STEPS = 44  # to 11:00 local
TOL_W = 1.0
#: The bound test's stretch: to 15:00 local, past the noon export cap.
BOUND_STEPS = 60
EXPORT_CAP_W = 5_000.0


def test_recorded_signals_and_the_law_s_rules_hold_in_replay(
    site: Site, data: pd.DataFrame, tmp_path: Path
) -> None:
    day = SAMPLE_DAYS[0]
    data_site = site.model_dump(mode="json")
    for d in data_site["devices"]:
        if d["id"] == "pv-2":
            d["commissioned_on"] = "2025-05-01"  # the Solarspitzengesetz holds it
    ruled = Site.model_validate(data_site)
    start, end = raw_window(ruled, day, day)
    raw = data[(data.index >= start) & (data.index < end)]
    stage_from = datetime(2018, 5, 16, 7, 0, tzinfo=UTC)  # 09:00 local
    stage_to = datetime(2018, 5, 16, 9, 0, tzinfo=UTC)
    recorded = tmp_path / "signals.csv"
    write_signals(
        recorded,
        [
            Signal(
                "box-1",
                SignalKind.FEED_IN,
                stage_from,
                stage_to,
                devices=frozenset({"pv-1"}),
                feed_in_pct=10.0,
                reason="relay 10 %",
            )
        ],
    )
    signals = read_signals(recorded, ruled)
    index = day_index(ruled, day)[:STEPS]
    truth = plant_inputs(ruled, raw.loc[index])
    trace, journal, _ = run_controller(
        ruled, plant_params(ruled), truth, raw, "asof", signals=signals
    )
    trace = day_trace(trace, journal, slice(0, STEPS))
    ids = [p.id for p in ruled.pv]
    pv1, pv2 = trace.pv_w[:, ids.index("pv-1")], trace.pv_w[:, ids.index("pv-2")]
    in_stage = (index >= pd.Timestamp(stage_from)) & (index < pd.Timestamp(stage_to))
    assert in_stage.sum() == 8
    assert (pv1[in_stage] <= 0.1 * 60_000 + TOL_W).all()
    assert pv1[~in_stage].max() > 0.1 * 60_000 + 1_000  # the cap was not there before
    assert (pv2 <= 0.6 * 44_000 + TOL_W).all()
    # The PV caps sent (setpoint columns: batteries, then inverters, then the heat pump).
    cap2 = trace.setpoints[:, len(ruled.batteries) + ids.index("pv-2")]
    assert (cap2[~np.isnan(cap2)] <= 0.6 * 44_000 + TOL_W).all()
    # Without the rules and the file, the same day runs above both caps (the test can fail).
    free, free_journal, _ = run_controller(site, plant_params(site), truth, raw, "asof")
    free = day_trace(free, free_journal, slice(0, STEPS))
    assert free.pv_w[in_stage, ids.index("pv-1")].max() > 0.1 * 60_000 + 1_000
    free_cap2 = free.setpoints[:, len(site.batteries) + ids.index("pv-2")]
    assert np.nanmax(free_cap2) > 0.6 * 44_000 + 1_000
    assert np.isfinite(trace.out).all()


@pytest.mark.parametrize("name", [NO_CONTROL, SELF_CONSUMPTION])
def test_baselines_follow_the_same_signals_as_the_controller(
    site: Site, data: pd.DataFrame, name: str
) -> None:
    """The rule baselines keep the law's 60 % cap, zero export at negative prices and a
    recorded §9 stage and §14a dim, as the controller does: the comparison is fair."""
    day = SAMPLE_DAYS[0]
    data_site = site.model_dump(mode="json")
    for d in data_site["devices"]:
        if d["id"] == "pv-2":
            d["commissioned_on"] = "2025-05-01"
        if d["kind"] == "battery":
            d["enwg_14a"] = True
    ruled = Site.model_validate(data_site)
    start, end = raw_window(ruled, day, day)
    raw = data[(data.index >= start) & (data.index < end)]
    index = day_index(ruled, day)
    truth = plant_inputs(ruled, raw.loc[index])
    params = plant_params(ruled)
    # The district's own load takes all its PV: in the two sunniest quarter hours it is
    # away (load and heat demand 0), and the price is negative.
    sunny = np.argsort(truth.pv_avail_w.sum(axis=1))[-2:]
    negative = np.zeros(len(index), dtype=bool)
    negative[sunny] = True
    truth.inp[negative, plant.I_LOAD] = 0.0
    truth.inp[negative, plant.I_DEMAND] = 0.0
    truth.inp[negative, plant.I_PRICE_EXP] = -50.0 - ruled.grid.export_fee_eur_per_mwh
    free = run_rule_strategy(name, params, truth)
    stage = (datetime(2018, 5, 16, 7, 0, tzinfo=UTC), datetime(2018, 5, 16, 9, 0, tzinfo=UTC))
    signals = [
        Signal("box-1", SignalKind.FEED_IN, *stage, devices=frozenset({"pv-1"}), feed_in_pct=10.0),
        Signal("box-1", SignalKind.CONSUMPTION, index[0].to_pydatetime()),  # all day
    ]
    limits = signal_limits(ruled, params, truth, signals)
    trace = run_rule_strategy(name, params, truth, limits=limits)
    ids = [p.id for p in ruled.pv]
    in_stage = (index >= pd.Timestamp(stage[0])) & (index < pd.Timestamp(stage[1]))
    pv1, pv2 = trace.pv_w[:, ids.index("pv-1")], trace.pv_w[:, ids.index("pv-2")]
    assert (pv1[in_stage] <= 0.1 * 60_000 + TOL_W).all()
    assert (pv2 <= 0.6 * 44_000 + TOL_W).all()
    assert (-trace.out[negative, plant.O_GRID] <= TOL_W).all()
    assert (-trace.bat_w <= FLOOR_14A_W + TOL_W).all()
    # Without the signals the same baseline breaks each of them (the test can fail).
    assert free.pv_w[in_stage, ids.index("pv-1")].max() > 0.1 * 60_000 + 1_000
    if name == NO_CONTROL:  # self-consumption may store the surplus instead
        assert (-free.out[negative, plant.O_GRID]).max() > 1_000
    if name == SELF_CONSUMPTION:
        assert (-free.bat_w).max() > FLOOR_14A_W + 1_000


def test_a_bad_signals_file_names_the_row_and_column(site: Site) -> None:
    head = "source,kind,start,end,devices,feed_in_pct,limit_w,basis,ems,reason\n"
    ok = "box-1,feed_in_pct,2018-05-16T07:00:00+00:00,,pv-1,60,,rated,false,relay\n"
    assert len(parse_signals(head + ok, site)) == 1
    cases = [
        ("box-1,dim,2018-05-16T07:00:00+00:00,,,,,,,\n", r"row 2, kind: 'dim' is not one of"),
        ("box-1,feed_in_pct,2018-05-16T07:00:00,,,60,,,,\n", r"row 2, start: .* no time zone"),
        ("box-1,feed_in_pct,2018-05-16T07:00:00Z,,pv-9,60,,,,\n", r"row 2, devices: no device"),
        ("box-1,feed_in_pct,2018-05-16T07:00:00Z,,,140,,,,\n", r"row 2: .*feed_in_pct must be"),
        ("box-1,import_cap,2018-05-16T07:00:00Z,,,,lots,,,\n", r"row 2, limit_w: not a number"),
        ("box-1,import_cap,2018-05-16T07:00:00Z,,,,5,,maybe,\n", r"row 2, ems: true or false"),
    ]
    for row, message in cases:
        with pytest.raises(SignalError, match=message):
            parse_signals(head + row, site)
    with pytest.raises(SignalError, match="unknown column"):
        parse_signals("source,kind,start,colour\n", site)


def test_the_bound_and_the_oracle_keep_the_signals_the_controller_keeps(
    site: Site, data: pd.DataFrame, tmp_path: Path
) -> None:
    """A replay with a recorded signals file: an export cap late in the morning, a §9 stage
    on one inverter before it, a §14a dim of the batteries' charging for an hour after it,
    and the law's 60 % cap on the other inverter. The district's load and the data centre
    are away from 09:00 to 14:00 local, so PV has nowhere to go but the batteries and the
    grid, and the price is negative for half an hour of it (zero export by the law). The
    bound and the oracle keep the signals as the controller does, so the bound stays below
    every strategy, all of which keep them, and the shares compare like with like; without
    the signals the bound would export above the cap and charge faster (the test can
    fail)."""
    day = SAMPLE_DAYS[0]
    data_site = site.model_dump(mode="json")
    for d in data_site["devices"]:
        if d["id"] == "pv-2":
            d["commissioned_on"] = "2025-05-01"  # the Solarspitzengesetz holds it
        if d["kind"] == "battery":
            d["enwg_14a"] = True
    ruled = Site.model_validate(data_site)
    cap_from = datetime(2018, 5, 16, 9, 0, tzinfo=UTC)  # 11:00 local
    cap_to = datetime(2018, 5, 16, 11, 0, tzinfo=UTC)
    stage = (datetime(2018, 5, 16, 7, 0, tzinfo=UTC), datetime(2018, 5, 16, 9, 0, tzinfo=UTC))
    dim = (datetime(2018, 5, 16, 11, 0, tzinfo=UTC), datetime(2018, 5, 16, 12, 0, tzinfo=UTC))
    recorded = tmp_path / "signals.csv"
    write_signals(
        recorded,
        [
            Signal("dso", SignalKind.EXPORT_CAP, cap_from, cap_to, limit_w=EXPORT_CAP_W),
            Signal(
                "box-1", SignalKind.FEED_IN, *stage, devices=frozenset({"pv-1"}), feed_in_pct=10.0
            ),
            Signal("box-1", SignalKind.CONSUMPTION, *dim),  # each battery to 4.2 kW
        ],
    )
    signals = tuple(read_signals(recorded, ruled))
    options = ReplayOptions(max_steps=BOUND_STEPS, keep_traces=True, signals=signals)
    start, end = raw_window(ruled, day, day)
    raw = data[(data.index >= start) & (data.index < end)].copy()
    away = (raw.index >= pd.Timestamp("2018-05-16 07:00Z")) & (
        raw.index < pd.Timestamp("2018-05-16 12:00Z")
    )
    raw.loc[away, ["load_w_per_mwh_a", "it_load_ratio"]] = 0.0
    # Half an hour of negative prices in it, after the export cap: zero export by the law.
    negative_from = pd.Timestamp("2018-05-16 11:15Z")
    negative_to = negative_from + pd.Timedelta(minutes=30)
    raw.loc[(raw.index >= negative_from) & (raw.index < negative_to), "price_eur_per_mwh"] = -20.0
    result = replay_day(DayJob(ruled, day, raw, options))
    index = day_index(ruled, day)[:BOUND_STEPS]
    capped = (index >= pd.Timestamp(cap_from)) & (index < pd.Timestamp(cap_to))
    in_stage = (index >= pd.Timestamp(stage[0])) & (index < pd.Timestamp(stage[1]))
    dimmed = (index >= pd.Timestamp(dim[0])) & (index < pd.Timestamp(dim[1]))
    negative = (index >= negative_from) & (index < negative_to)
    assert capped.sum() == 8 and in_stage.sum() == 8 and dimmed.sum() == 4 and negative.sum() == 2
    kpis = result.kpis
    bound = kpis[BOUND]
    # The bound, ending where each strategy ended, lies below it: every strategy keeps the
    # signals.
    assert bound["cost_eur"] <= kpis[CONTROLLER]["cost_eur"] + bound["bound_gap_eur"] + 1e-6
    for name in STRATEGIES:
        assert kpis[name]["regret_eur"] >= -kpis[name]["bound_gap_eur"] - 1e-6, name
    assert result.traces is not None
    ids = [p.id for p in ruled.pv]
    bound_frame = result.frames[BOUND]
    export = -bound_frame["grid_w"].to_numpy()
    assert (export[capped] <= EXPORT_CAP_W + TOL_W).all()
    assert (export[negative] <= TOL_W).all()
    charging = bound_frame["battery_charge_w"].to_numpy()
    assert (charging[dimmed] <= 2 * FLOOR_14A_W + TOL_W).all()
    oracle = result.traces[ORACLE]
    assert (-oracle.out[capped, plant.O_GRID] <= EXPORT_CAP_W + TOL_W).all()
    assert (-oracle.out[negative, plant.O_GRID] <= TOL_W).all()
    assert (oracle.bat_ch_w[dimmed] <= FLOOR_14A_W + TOL_W).all()
    assert (oracle.pv_w[in_stage, ids.index("pv-1")] <= 0.1 * 60_000 + TOL_W).all()
    assert (oracle.pv_w[:, ids.index("pv-2")] <= 0.6 * 44_000 + TOL_W).all()
    # The bound's PV (one site column) within what the capped inverters could give.
    params = plant_params(ruled)
    truth = plant_inputs(ruled, raw.loc[index])
    caps = np.full((BOUND_STEPS, 2), np.inf)
    caps[in_stage, ids.index("pv-1")] = 0.1 * 60_000
    caps[:, ids.index("pv-2")] = 0.6 * 44_000
    most = np.minimum(truth.pv_avail_w, caps).sum(axis=1)
    assert (bound_frame["pv_w"].to_numpy() <= most + TOL_W).all()
    # Without the signals, the bound from the same start to the same end exports above the
    # cap and pays less: the signals change it.
    free = Bound(ruled, params, truth)
    end = result.ends[CONTROLLER]
    solve = free.solve(end.soc_wh, end.store_wh)
    free_export = -solve.trace.out[:, plant.O_GRID]
    assert free_export[capped].max() > EXPORT_CAP_W + 5_000
    assert solve.trace.out[dimmed, plant.O_BAT_CH].max() > 2 * FLOOR_14A_W + 1_000
    assert solve.cost_eur < bound["cost_eur"] - 0.5
