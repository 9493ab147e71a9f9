"""The numba plant kernels equal the plain-Python reference, step by step and over days."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.core.site import Site
from vpp.replay import plant as k
from vpp.replay.layout import plant_inputs, plant_params
from vpp.replay.reference import RefState, ref_electric, ref_heat, ref_run_rule
from vpp.replay.runner import day_index

POWER = st.floats(-2e5, 2e5, allow_nan=False)
POSITIVE = st.floats(0.0, 5e5, allow_nan=False)


@st.composite
def batteries(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Battery parameter rows and a stored energy for each (possibly outside the window)."""
    n = draw(st.integers(0, 3))
    rows, socs = [], []
    for _ in range(n):
        cap = draw(st.floats(1e3, 1e5))
        lo, hi = draw(st.floats(0.0, 0.4)), draw(st.floats(0.6, 1.0))
        rows.append(
            [
                cap,
                cap * lo,
                cap * hi,
                draw(st.floats(100.0, 5e4)),
                draw(st.floats(100.0, 5e4)),
                draw(st.floats(0.8, 1.0)),
                draw(st.floats(0.8, 1.0)),
                20.0,
            ]
        )
        socs.append(draw(st.floats(0.0, 1.0)) * cap)
    return np.array(rows).reshape(n, k.N_BAT_PARAMS), np.array(socs, dtype=float)


@st.composite
def heat_params(draw: st.DrawFn) -> np.ndarray:
    hp_max = draw(st.floats(0.0, 2e5))
    return np.array(
        [
            0.25,
            draw(st.floats(0.0, 5e6)),
            draw(st.floats(0.99, 1.0)),
            draw(POSITIVE),
            draw(POSITIVE),
            draw(POSITIVE),
            hp_max,
            hp_max * draw(st.floats(0.0, 0.5)),
            draw(st.floats(0.0, 0.1)),
        ]
    )


@st.composite
def step_inputs(draw: st.DrawFn) -> np.ndarray:
    cop = draw(st.one_of(st.just(0.0), st.floats(1.2, 6.0)))
    return np.array(
        [
            draw(POSITIVE),
            draw(POSITIVE),
            draw(POSITIVE),
            cop,
            draw(st.floats(-100, 500)),
            draw(st.floats(-100, 500)),
            draw(st.floats(0, 800)),
        ]
    )


def _close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-9, atol=1e-6))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    bats=batteries(),
    heat=heat_params(),
    inp=step_inputs(),
    pv=st.lists(st.tuples(POSITIVE, POSITIVE, POSITIVE), max_size=3),
    bat_set=st.lists(POWER, min_size=3, max_size=3),
    hp_set=POWER,
    store_share=st.floats(0.0, 1.0),
)
def test_step_equals_reference(
    bats: tuple[np.ndarray, np.ndarray],
    heat: np.ndarray,
    inp: np.ndarray,
    pv: list[tuple[float, float, float]],
    bat_set: list[float],
    hp_set: float,
    store_share: float,
) -> None:
    bat, soc = bats
    n = len(bat)
    rated = np.array([p[0] for p in pv], dtype=float)
    avail = np.array([p[1] for p in pv], dtype=float)
    limit = np.array([p[2] for p in pv], dtype=float)
    store0 = store_share * heat[k.H_STORE_CAP]
    sets = np.array(bat_set[:n], dtype=float)
    out = np.zeros(k.N_OUT)
    soc_k, store_k = soc.copy(), np.array([store0])
    bat_w, pv_w = np.zeros(n), np.zeros(len(pv))
    k.plant_step(
        bat, rated, heat, avail, inp, sets, limit, hp_set, soc_k, store_k, bat_w, pv_w, out
    )
    state = RefState(list(soc), store0)
    ref: dict[str, float] = {}
    ref_heat(list(heat), list(inp), hp_set, state, ref)
    ref_bat, ref_pv = ref_electric(
        bat.tolist(),
        list(rated),
        list(heat),
        list(avail),
        list(inp),
        list(sets),
        list(limit),
        state,
        ref,
    )
    for i, name in enumerate(k.OUTPUT_COLUMNS):
        assert _close(out[i], ref[name]), (name, out[i], ref[name])
    assert all(_close(a, b) for a, b in zip(soc_k, state.soc_wh, strict=True))
    assert all(_close(a, b) for a, b in zip(bat_w, ref_bat, strict=True))
    assert all(_close(a, b) for a, b in zip(pv_w, ref_pv, strict=True))
    assert _close(store_k[0], state.store_wh)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    bats=batteries(),
    heat=heat_params(),
    steps=st.lists(step_inputs(), min_size=1, max_size=6),
    rule=st.sampled_from([k.RULE_NO_CONTROL, k.RULE_SELF_CONSUMPTION]),
    pv=st.lists(st.floats(0.0, 2e5), max_size=2),
)
def test_rules_equal_reference(
    bats: tuple[np.ndarray, np.ndarray],
    heat: np.ndarray,
    steps: list[np.ndarray],
    rule: int,
    pv: list[float],
) -> None:
    bat, soc = bats
    inp = np.array(steps)
    rated = np.full(len(pv), 1e5)
    avail = np.tile(np.array(pv, dtype=float), (len(steps), 1)).reshape(len(steps), len(pv))
    store0 = 0.5 * heat[k.H_STORE_CAP]
    out, _, _, _ = k.run_rule(
        rule, bat, rated, heat, avail, inp, soc, store0, *k.no_limits(len(steps), len(bat), len(pv))
    )
    ref = ref_run_rule(
        rule, bat.tolist(), list(rated), list(heat), avail.tolist(), inp.tolist(), list(soc), store0
    )
    for t, row in enumerate(ref):
        for i, name in enumerate(k.OUTPUT_COLUMNS):
            assert _close(out[t, i], row[name]), (t, name, out[t, i], row[name])


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    bats=batteries(),
    heat=heat_params(),
    steps=st.lists(step_inputs(), min_size=1, max_size=6),
    rule=st.sampled_from([k.RULE_NO_CONTROL, k.RULE_SELF_CONSUMPTION]),
    pv=st.lists(st.floats(0.0, 2e5), min_size=1, max_size=2),
    caps=st.tuples(st.floats(0.0, 1e5), st.floats(0.0, 5e3), st.floats(0.0, 5e4)),
)
def test_rules_under_signals_equal_reference_and_keep_the_caps(
    bats: tuple[np.ndarray, np.ndarray],
    heat: np.ndarray,
    steps: list[np.ndarray],
    rule: int,
    pv: list[float],
    caps: tuple[float, float, float],
) -> None:
    """The baselines under a feed-in cap per inverter, a charging cap per battery and an
    export cap: equal to the reference, and every cap holds (the export cap wherever PV can
    give way to it)."""
    bat, soc = bats
    inp = np.array(steps)
    n, nb, nv = len(steps), len(bat), len(pv)
    rated = np.full(nv, 1e5)
    avail = np.tile(np.array(pv, dtype=float), (n, 1)).reshape(n, nv)
    pv_cap = np.full((n, nv), caps[0])
    charge_cap = np.full((n, nb), caps[1])
    export_cap = np.full(n, caps[2])
    store0 = 0.5 * heat[k.H_STORE_CAP]
    out, bat_w, _, pv_w = k.run_rule(
        rule, bat, rated, heat, avail, inp, soc, store0, pv_cap, charge_cap, export_cap
    )
    ref = ref_run_rule(
        rule, bat.tolist(), list(rated), list(heat), avail.tolist(), inp.tolist(), list(soc),
        store0, pv_cap.tolist(), charge_cap.tolist(), export_cap.tolist(),
    )  # fmt: skip
    for t, row in enumerate(ref):
        for i, name in enumerate(k.OUTPUT_COLUMNS):
            assert _close(out[t, i], row[name]), (t, name, out[t, i], row[name])
    assert (pv_w <= pv_cap + 1e-6).all()
    assert (-bat_w <= charge_cap + 1e-6).all()
    curtailable = out[:, k.O_PV] > 1e-6
    export = -out[:, k.O_GRID]
    assert (export[curtailable] <= export_cap[curtailable] + 1e-6).all()


def test_baselines_equal_reference_on_a_real_day(site: Site, data: pd.DataFrame) -> None:
    params = plant_params(site)
    inputs = plant_inputs(site, data.loc[day_index(site, date(2018, 1, 10))])
    for rule in (k.RULE_NO_CONTROL, k.RULE_SELF_CONSUMPTION):
        out, _, _, _ = k.run_rule(
            rule,
            params.bat,
            params.pv_rated_w,
            params.heat,
            inputs.pv_avail_w,
            inputs.inp,
            params.soc0_wh,
            params.store0_wh,
            *k.no_limits(len(inputs.index), len(params.bat), len(params.pv_rated_w)),
        )
        ref = ref_run_rule(
            rule,
            params.bat.tolist(),
            list(params.pv_rated_w),
            list(params.heat),
            inputs.pv_avail_w.tolist(),
            inputs.inp.tolist(),
            list(params.soc0_wh),
            params.store0_wh,
        )
        expected = np.array([[row[c] for c in k.OUTPUT_COLUMNS] for row in ref])
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-6)


def test_kernels_are_cached() -> None:
    """Compiled code goes to numba's on-disk cache, so worker processes load it."""
    for kernel in (k.plant_step, k.run_rule, k.heat_step, k.electric_step):
        assert kernel._cache.__class__.__name__ != "NullCache"  # type: ignore[attr-defined]
