"""The 2025 Solarspitzengesetz rules: the 60 %-of-peak cap and zero export at negative
prices, decided per device by the site file, resolved like every other signal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.control.envelope import envelope
from vpp.core.site import ConfigError, Site, parse_site
from vpp.signals import Signal, SignalError, SignalKind, active_bounds
from vpp.signals.rules import SOLARSPITZEN_FROM, solarspitzen_rule
from vpp.signals.standing import (
    CAP_SOURCE,
    negative_price_signals,
    solarspitzen_cap,
    solarspitzen_devices,
)
from vpp.signals.watch import SignalWatch
from vpp.testing.harness import small_site

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
NEW = "2025-03-01"


def site_with(facts: dict[int, dict[str, Any]]) -> Site:
    """The small site with PV facts by the inverter's position."""
    data = small_site().model_dump(mode="json")
    pvs = [d for d in data["devices"] if d["kind"] == "pv"]
    for i, fact in facts.items():
        pvs[i].update(fact)
    return parse_site(data, "<solarspitzen>")


@pytest.mark.parametrize(
    ("facts", "held"),
    [
        ({"commissioned_on": NEW}, True),
        ({"commissioned_on": "2025-02-25"}, True),
        ({"commissioned_on": "2025-02-24"}, False),
        ({}, False),  # no date: an older system
        ({"commissioned_on": NEW, "smart_meter_gateway": True}, False),
        ({"commissioned_on": NEW, "peak_wp": 1_900, "rated_w": 1_800}, False),
        ({"commissioned_on": NEW, "peak_wp": 100_000, "rated_w": 90_000}, False),
        ({"commissioned_on": NEW, "enabled": False}, False),
    ],
    ids=["new", "first-day", "day-before", "no-date", "gateway", "balcony", "100-kWp", "off"],
)
def test_the_site_file_facts_decide_which_systems_the_rules_hold(
    facts: dict[str, Any], held: bool
) -> None:
    site = site_with({0: facts})
    device = site.devices[0]
    assert solarspitzen_rule(device) is held
    assert (device.id in solarspitzen_devices(site)) is held


def test_a_bad_commissioning_date_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"commissioned_on"):
        site_with({0: {"commissioned_on": "25.02.2025"}})


def test_the_cap_is_60_percent_of_peak_power_and_leaves_other_systems_alone() -> None:
    site = site_with({0: {"commissioned_on": NEW}, 1: {"commissioned_on": NEW}})
    resolved = active_bounds(site, solarspitzen_cap(site, T0), T0)
    assert set(resolved.bounds) == {site.pv[0].id, site.pv[1].id}
    for pv in site.pv[:2]:
        env = envelope(site, None, pv.id, 600.0, resolved.bounds[pv.id])
        assert env.hi == pytest.approx(0.6 * pv.dc_peak_w)
    assert resolved.conflicts == ()


@settings(max_examples=60, deadline=None)
@given(
    peak_w=st.floats(2_000, 99_000),
    ratio=st.floats(0.6, 1.2),
    proposed_w=st.floats(0, 120_000),
    stage=st.sampled_from([None, 100.0, 60.0, 30.0]),
)
def test_no_setpoint_of_a_held_system_exceeds_60_percent_of_its_peak(
    peak_w: float, ratio: float, proposed_w: float, stage: float | None
) -> None:
    """Safety rule: whatever the plan proposes and whatever §9 stage is active, an inverter
    the Solarspitzengesetz holds is never given more than 60 % of its peak power (or its
    minimum limit, where that is higher), and the stricter signal wins."""
    rated = max(peak_w * ratio, 1_000.0)
    site = site_with({0: {"commissioned_on": NEW, "peak_wp": peak_w, "rated_w": rated}})
    pv = site.pv[0]
    signals = list(solarspitzen_cap(site, T0))
    if stage is not None:
        signals.append(
            Signal("box-1", SignalKind.FEED_IN, T0 - timedelta(minutes=1), feed_in_pct=stage)
        )
    resolved = active_bounds(site, signals, T0)
    env = envelope(site, None, pv.id, 600.0, resolved.bounds[pv.id])
    given_w = min(max(proposed_w, env.lo), env.hi)
    floor = pv.min_limit_pct / 100 * pv.rated_w
    allowed = 0.6 * pv.dc_peak_w
    if stage is not None:
        allowed = min(allowed, stage / 100 * pv.rated_w)
    assert given_w <= max(allowed, floor) + 1e-6
    winner = resolved.winners[(pv.id, SignalKind.FEED_IN)]
    stage_w = None if stage is None else stage / 100 * pv.rated_w
    if stage_w is not None and stage_w < 0.6 * pv.dc_peak_w - 1e-6:
        assert winner.source == "box-1"
        assert resolved.conflicts and resolved.conflicts[0].winner is winner
    else:
        assert winner.source == CAP_SOURCE


def test_negative_prices_become_zero_export_windows_for_the_held_systems() -> None:
    site = site_with({2: {"commissioned_on": NEW}})
    index = pd.date_range("2026-06-21 08:00", periods=12, freq="15min", tz="UTC")
    prices = pd.Series([5, -1, -3, 0, 2, -0.5, -8, -8, 4, 3, 3, -2], index=index, dtype=float)
    windows = negative_price_signals(site, prices)
    got = [(s.start, s.end) for s in windows]
    q = timedelta(minutes=15)
    t = index[0].to_pydatetime()
    assert got == [(t + q, t + 3 * q), (t + 5 * q, t + 8 * q), (t + 11 * q, t + 12 * q)]
    assert all(s.kind == SignalKind.ZERO_EXPORT for s in windows)
    assert all(s.devices == frozenset({site.pv[2].id}) for s in windows)
    # A gap in the prices ends a window even if both sides are negative.
    holed = prices.drop(index[6])
    assert len(negative_price_signals(site, holed)) == 4
    # A site without such systems has no windows.
    assert negative_price_signals(small_site(), prices) == ()


def test_zero_export_is_an_export_cap_of_0_w_and_beats_a_looser_export_cap() -> None:
    site = site_with({0: {"commissioned_on": NEW}})
    start = T0 - timedelta(minutes=5)
    zero = Signal("rule:negative-price", SignalKind.ZERO_EXPORT, start, devices=frozenset({"x"}))
    cap = Signal("op", SignalKind.EXPORT_CAP, start, limit_w=20_000)
    resolved = active_bounds(site, [cap, zero], T0)
    assert resolved.export_cap_w == 0.0
    assert resolved.grid_limits_w(50_000, 50_000) == (50_000, 0.0)
    (conflict,) = resolved.conflicts
    assert conflict.winner is zero and conflict.losers == (cap,)
    # Outside its window it no longer counts.
    later = Signal(
        "rule:negative-price", SignalKind.ZERO_EXPORT, start, T0, devices=frozenset({"x"})
    )
    assert active_bounds(site, [later], T0).export_cap_w is None


def test_zero_export_refuses_a_limit_or_a_percentage() -> None:
    with pytest.raises(SignalError, match="zero export takes neither"):
        Signal("x", SignalKind.ZERO_EXPORT, T0, limit_w=5.0)
    with pytest.raises(SignalError, match="basis"):
        Signal("x", SignalKind.FEED_IN, T0, feed_in_pct=60, basis="dc")  # type: ignore[arg-type]


def test_a_site_with_held_systems_gets_a_watch_even_without_sources() -> None:
    assert not SignalWatch.needed(small_site())
    site = site_with({0: {"commissioned_on": NEW}})
    assert SignalWatch.needed(site)
    watch = SignalWatch(site, [], T0)
    assert [s.source for s in watch.signals] == [CAP_SOURCE]
    index = pd.date_range(T0, periods=4, freq="15min")
    watch.set_prices(pd.Series([-1.0, -1.0, 3.0, 3.0], index=index))
    assert [s.kind for s in watch.signals] == [SignalKind.FEED_IN, SignalKind.ZERO_EXPORT]


def test_the_commissioning_day_of_the_law_is_the_25th_of_february_2025() -> None:
    assert date(2025, 2, 25) == SOLARSPITZEN_FROM
