"""Splitting unit plans over devices: adds up exactly, respects each device's limits and SoC."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.aggregate import BatteryFleet, PvFleet, clusters_from_keys
from optimizer.split import split_batteries, split_pv

DT = 0.25


def _fleet(rng: np.random.Generator, n: int, synced: bool = False) -> BatteryFleet:
    cap = rng.choice([5_000.0, 10_000.0, 20_000.0], n)
    hours = np.full(n, 2.0) if synced else rng.uniform(1.0, 3.0, n)
    power = cap / hours
    lo, hi = 0.1 * cap, 0.9 * cap
    fill = np.full(n, rng.uniform(0.0, 1.0)) if synced else rng.uniform(-0.1, 1.1, n)
    eta = np.full(n, 0.95) if synced else rng.uniform(0.85, 0.98, n)
    return BatteryFleet(
        ids=tuple(f"b{i}" for i in range(n)),
        feeders=("F",) * n,
        capacity_wh=cap,
        max_charge_w=power,
        max_discharge_w=power,
        eta_charge=eta,
        eta_discharge=eta,
        soc_min_wh=lo,
        soc_max_wh=hi,
        wear_eur_per_mwh=np.zeros(n),
        soc0_wh=np.clip(lo + fill * (hi - lo), 0, cap),
    )


def _check_devices(fleet: BatteryFleet, power: np.ndarray, soc: np.ndarray) -> None:
    assert (power <= fleet.max_discharge_w[:, None] + 1e-9).all()
    assert (-power <= fleet.max_charge_w[:, None] + 1e-9).all()
    prev = np.concatenate([fleet.soc0_wh[:, None], soc[:, :-1]], axis=1)
    expect = (
        prev
        + fleet.eta_charge[:, None] * np.maximum(-power, 0) * DT
        - np.maximum(power, 0) * DT / fleet.eta_discharge[:, None]
    )
    np.testing.assert_allclose(soc, expect, atol=1e-6)
    lo = np.minimum(fleet.soc_min_wh, fleet.soc0_wh)[:, None]
    hi = np.maximum(fleet.soc_max_wh, fleet.soc0_wh)[:, None]
    assert (soc >= lo - 1e-6).all() and (soc <= hi + 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    units=st.integers(1, 3),
    scale=st.floats(0.0, 1.5),
)
def test_battery_split_is_exact_or_reports_the_shortfall(
    seed: int, n: int, units: int, scale: float
) -> None:
    rng = np.random.default_rng(seed)
    fleet = _fleet(rng, n)
    clusters = clusters_from_keys([f"u{i % units}" for i in range(n)])
    rating = clusters.sum(fleet.max_discharge_w)[:, None]
    target = rng.uniform(-1, 1, (len(clusters), 16)) * rating * scale
    power, soc, short = split_batteries(target, clusters, fleet, DT)
    _check_devices(fleet, power, soc)
    delivered = clusters.sum(power)
    assert (short >= 0).all()
    np.testing.assert_allclose(np.abs(delivered), np.abs(target) - short, atol=1e-6)
    assert (np.sign(delivered) * np.sign(target) >= 0).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20))
def test_synchronised_members_follow_any_feasible_unit_plan(seed: int, n: int) -> None:
    """Members at the same fill level with the same hours at full power behave like one
    battery: every plan the unit's own limits allow splits without shortfall."""
    rng = np.random.default_rng(seed)
    fleet = _fleet(rng, n, synced=True)
    clusters = clusters_from_keys(["u"] * n)
    p_max = fleet.max_charge_w.sum()
    lo, hi, s = fleet.soc_min_wh.sum(), fleet.soc_max_wh.sum(), fleet.soc0_wh.sum()
    plan = np.zeros((1, 32))
    for t in range(32):  # a random plan within the unit's own power and energy limits
        up = min(p_max, (hi - s) / (0.95 * DT))
        down = min(p_max, (s - lo) * 0.95 / DT)
        x = rng.uniform(-up, down) * 0.999
        plan[0, t] = x
        s += -x * 0.95 * DT if x < 0 else -x * DT / 0.95
    power, soc, short = split_batteries(plan, clusters, fleet, DT)
    assert short.max() == 0.0
    np.testing.assert_allclose(power.sum(axis=0), plan[0], rtol=1e-12, atol=1e-6)
    _check_devices(fleet, power, soc)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 15), units=st.integers(1, 4))
def test_pv_split_adds_up_and_stays_in_range(seed: int, n: int, units: int) -> None:
    rng = np.random.default_rng(seed)
    rated = rng.uniform(3_000, 30_000, n)
    fleet = PvFleet(
        ids=tuple(f"p{i}" for i in range(n)),
        feeders=("F",) * n,
        rated_w=rated,
        peak_wp=rated,
        min_limit_w=rated * rng.uniform(0.01, 0.3, n),
    )
    avail = rng.uniform(0, 1, (n, 12)) * rated[:, None]
    low = np.minimum(avail, fleet.min_limit_w[:, None])
    clusters = clusters_from_keys([f"u{i % units}" for i in range(n)])
    lo_sum, hi_sum = clusters.sum(low), clusters.sum(avail)
    target = lo_sum + rng.uniform(0, 1, lo_sum.shape) * (hi_sum - lo_sum)
    out, limit = split_pv(target, clusters, avail, low, rated, 1.0)
    np.testing.assert_allclose(clusters.sum(out), target, rtol=1e-12, atol=1e-6)
    assert (out >= low - 1e-9).all() and (out <= avail + 1e-9).all()
    assert (limit >= fleet.min_limit_w[:, None] - 1e-9).all()
    np.testing.assert_allclose(np.minimum(avail, limit), out, atol=1.0)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 16),
    units=st.integers(1, 4),
    changed=st.lists(st.integers(0, 3), max_size=4),
)
def test_splitting_only_the_changed_units_is_a_split_from_scratch(
    seed: int, n: int, units: int, changed: list[int]
) -> None:
    """What the split rounds do: the units whose plan moved are split again, the rest kept."""
    rng = np.random.default_rng(seed)
    fleet = _fleet(rng, n)
    clusters = clusters_from_keys([f"u{i % units}" for i in range(n)])
    k = len(clusters)
    cap = clusters.sum(fleet.max_discharge_w[:, None])[:, 0]
    net = rng.uniform(-1.2, 1.2, (k, 8)) * cap[:, None]
    first = split_batteries(net, clusters, fleet, DT)
    later = net.copy()
    for u in changed:
        if u < k:
            later[u, rng.integers(8)] *= rng.uniform(0.0, 1.0)
    again = split_batteries(later, clusters, fleet, DT, (net, *first))
    fresh = split_batteries(later, clusters, fleet, DT)
    for got, want in zip(again, fresh, strict=True):
        assert np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 12),
    capped=st.floats(0.1, 0.9),
    scale=st.floats(0.0, 1.2),
)
def test_battery_split_keeps_each_device_under_its_own_charging_cap(
    seed: int, n: int, capped: float, scale: float
) -> None:
    """A signal caps some members' charging (a §14a dim) in some steps: the unit's plan is
    within the sum of the caps, and no member is planned above its own."""
    rng = np.random.default_rng(seed)
    fleet = _fleet(rng, n)
    clusters = clusters_from_keys(["u"] * n)
    steps = 16
    cap = np.repeat(fleet.max_charge_w[:, None], steps, axis=1)
    dimmed = rng.uniform(0, 1, (n, steps)) < capped
    cap = np.where(dimmed, rng.uniform(0.0, 1.0, (n, steps)) * cap, cap)
    target = -rng.uniform(0, 1, (1, steps)) * clusters.sum(cap) * scale
    power, soc, short = split_batteries(target, clusters, fleet, DT, charge_max_w=cap)
    assert (-power <= cap + 1e-9).all(), "a member charges above its own cap"
    _check_devices(fleet, power, soc)
    delivered = clusters.sum(power)
    assert (short >= 0).all()
    np.testing.assert_allclose(np.abs(delivered), np.abs(target) - short, atol=1e-6)
    # Without the caps the same plan would put some members above them: the caps matter.
    free, _, _ = split_batteries(target, clusters, fleet, DT)
    if (-free > cap + 1.0).any():
        assert not np.allclose(free, power)
