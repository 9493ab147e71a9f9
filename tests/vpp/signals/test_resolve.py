"""The resolver: signals active now -> per-device bounds, grid caps and conflicts (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.control.envelope import envelope
from vpp.core.site import Site, parse_site
from vpp.signals import Signal, SignalError, SignalKind, active_bounds
from vpp.signals.rules import (
    FLOOR_14A_W,
    consumption_caps_w,
    device_floor_w,
    ems_floor_w,
    simultaneity_factor,
)
from vpp.testing.harness import small_site

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
HORIZON_S = 600.0


def site_14a(**pv: Any) -> Site:
    """The small site with every battery and the heat pump under §14a."""
    data = small_site().model_dump(mode="json")
    for d in data["devices"]:
        if d["kind"] in ("battery", "heat_pump"):
            d["enwg_14a"] = True
        if d["kind"] == "pv":
            d.update(pv)
    return parse_site(data, "<14a>")


SITE = site_14a()


def feed_in(pct: float, source: str = "box-1", **kw: Any) -> Signal:
    return Signal(source, SignalKind.FEED_IN, T0 - timedelta(minutes=1), feed_in_pct=pct, **kw)


def dim(source: str = "box-1", limit_w: float | None = None, **kw: Any) -> Signal:
    return Signal(source, SignalKind.CONSUMPTION, T0 - timedelta(minutes=1), limit_w=limit_w, **kw)


def env_of(site: Site, device_id: str, resolved: Any = None) -> Any:
    extra = () if resolved is None else resolved.bounds.get(device_id, ())
    return envelope(site, None, device_id, HORIZON_S, extra)


def test_a_feed_in_stage_caps_every_eeg_inverter_at_its_share_of_the_rating() -> None:
    resolved = active_bounds(SITE, [feed_in(60)], T0)
    for pv in SITE.pv:
        assert env_of(SITE, pv.id, resolved).hi == pytest.approx(0.6 * pv.rated_w)
    assert resolved.conflicts == ()
    assert resolved.non_compliant == ()


def test_inverters_not_under_eeg_control_and_devices_out_of_scope_are_left_alone() -> None:
    data = SITE.model_dump(mode="json")
    data["devices"][0]["eeg_controllable"] = False
    site = parse_site(data, "<x>")
    first, second, third = (p.id for p in site.pv[:3])
    resolved = active_bounds(site, [feed_in(30, devices=frozenset({first, second}))], T0)
    assert first not in resolved.bounds  # not §9 controllable
    assert env_of(site, second, resolved).hi == pytest.approx(0.3 * site.device(second).rated_w)
    assert third not in resolved.bounds  # not in the signal's scope


def test_zero_percent_holds_the_inverter_at_its_minimum_and_says_it_is_not_compliant() -> None:
    resolved = active_bounds(SITE, [feed_in(0)], T0)
    pv = SITE.pv[0]
    env = env_of(SITE, pv.id, resolved)
    assert env.lo == env.hi == pytest.approx(pv.min_limit_pct / 100 * pv.rated_w)
    assert len(resolved.non_compliant) == len(SITE.pv)
    assert "not compliant" in resolved.non_compliant[0]


def test_a_direct_14a_dim_caps_each_consumer_at_its_floor_and_never_below() -> None:
    resolved = active_bounds(SITE, [dim(limit_w=1000.0)], T0)  # asks below the floor
    for bat in SITE.batteries:
        env = env_of(SITE, bat.id, resolved)
        # Charging (< 0) down to the floor, or the battery's own rating if that is less.
        assert env.lo == pytest.approx(-min(FLOOR_14A_W, bat.max_charge_w))
        assert env.hi == bat.max_discharge_w or env.hi < bat.max_discharge_w  # untouched
    hp = SITE.heat_pump
    assert hp is not None
    # A heat pump rated above 11 kW keeps 40 % of its rating.
    assert env_of(SITE, hp.id, resolved).hi == pytest.approx(0.4 * hp.max_el_w)


def test_the_ems_floor_follows_the_several_device_formula() -> None:
    assert simultaneity_factor(1) == 1.0
    assert [simultaneity_factor(n) for n in range(2, 10)] == [
        0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45,
    ]  # fmt: skip
    assert simultaneity_factor(40) == 0.45
    for n in range(1, 12):
        expected = FLOOR_14A_W + (n - 1) * simultaneity_factor(n) * FLOOR_14A_W
        assert ems_floor_w([FLOOR_14A_W] * n) == pytest.approx(expected)
    consumers = [d for d in SITE.devices if d.kind in ("battery", "heat_pump")]
    caps = consumption_caps_w(consumers, None, ems=True)
    floors = [device_floor_w(d) for d in consumers]
    assert sum(caps.values()) == pytest.approx(ems_floor_w(floors))
    # An EMS limit above the floor is shared out; one below it is raised to it.
    assert sum(consumption_caps_w(consumers, 60_000.0, ems=True).values()) == pytest.approx(
        60_000.0
    )


def test_the_stricter_of_two_signals_wins_and_the_conflict_is_reported() -> None:
    resolved = active_bounds(SITE, [feed_in(60, "box-1"), feed_in(30, "box-2")], T0)
    pv = SITE.pv[0]
    assert env_of(SITE, pv.id, resolved).hi == pytest.approx(0.3 * pv.rated_w)
    [conflict] = resolved.conflicts
    assert conflict.winner.source == "box-2"
    assert [s.source for s in conflict.losers] == ["box-1"]
    assert "box-2: feed-in 30 % wins over box-1: feed-in 60 %" in str(conflict)
    assert len(conflict.devices) == len(SITE.pv)


def test_grid_caps_take_the_lowest_and_agreeing_signals_are_no_conflict() -> None:
    start = T0 - timedelta(minutes=1)
    caps = [
        Signal("api", SignalKind.EXPORT_CAP, start, limit_w=50_000.0),
        Signal("box-1", SignalKind.EXPORT_CAP, start, limit_w=30_000.0),
        Signal("api", SignalKind.IMPORT_CAP, start, limit_w=80_000.0),
    ]
    resolved = active_bounds(SITE, [*caps, feed_in(60, "a"), feed_in(60, "b")], T0)
    assert resolved.export_cap_w == 30_000.0
    assert resolved.import_cap_w == 80_000.0
    assert resolved.grid_limits_w(120_000.0, 80_000.0) == (80_000.0, 30_000.0)
    assert [c.kind for c in resolved.conflicts] == [SignalKind.EXPORT_CAP]


def test_only_signals_active_now_count() -> None:
    later = Signal("api", SignalKind.FEED_IN, T0 + timedelta(hours=1), feed_in_pct=0)
    over = Signal("api", SignalKind.FEED_IN, T0 - timedelta(hours=2), T0, feed_in_pct=0)
    assert active_bounds(SITE, [later, over], T0).bounds == {}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"kind": SignalKind.FEED_IN, "feed_in_pct": 130.0}, "feed_in_pct must be 0..100"),
        ({"kind": SignalKind.FEED_IN, "feed_in_pct": math.nan}, "feed_in_pct must be 0..100"),
        ({"kind": SignalKind.EXPORT_CAP}, "limit_w is required"),
        ({"kind": SignalKind.IMPORT_CAP, "limit_w": -5.0}, "limit_w must be a finite number"),
        ({"kind": SignalKind.CONSUMPTION, "feed_in_pct": 50.0}, "only a feed-in signal"),
        ({"kind": SignalKind.FEED_IN, "feed_in_pct": 50.0, "end": T0}, "is not after start"),
    ],
)
def test_bad_signals_are_refused_with_a_clear_error(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(SignalError, match=message):
        Signal("api", start=T0, **kw)


SIGNALS = st.lists(
    st.one_of(
        st.builds(
            feed_in,
            st.sampled_from([0.0, 30.0, 60.0, 100.0]) | st.floats(0, 100),
            st.sampled_from(["box-1", "box-2", "api"]),
        ),
        st.builds(
            dim,
            st.sampled_from(["box-1", "box-2", "api"]),
            st.none() | st.floats(0, 30_000),
            ems=st.booleans(),
        ),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(signals=SIGNALS)
def test_resolved_bounds_never_widen_an_envelope_and_the_stricter_signal_wins(
    signals: list[Signal],
) -> None:
    resolved = active_bounds(SITE, signals, T0)
    for device in SITE.devices:
        own = env_of(SITE, device.id)
        if own is None:
            assert device.id not in resolved.bounds
            continue
        env = env_of(SITE, device.id, resolved)
        assert own.lo <= env.lo <= env.hi <= own.hi  # never wider than the device allows
        if device.kind == "pv":
            stages = [s.feed_in_pct for s in signals if s.kind == SignalKind.FEED_IN]
            if stages:
                strictest = min(stages) / 100 * device.rated_w  # type: ignore[operator]
                assert env.hi == pytest.approx(own.clip(strictest))
        else:
            dims = [s for s in signals if s.kind == SignalKind.CONSUMPTION]
            caps = [
                consumption_caps_w(
                    [d for d in SITE.devices if d.kind in ("battery", "heat_pump")],
                    s.limit_w,
                    s.ems,
                )[device.id]
                for s in dims
            ]
            if caps:
                if not any(s.ems for s in dims):  # direct control: never below the floor
                    assert min(caps) >= device_floor_w(device) - 1e-9
                if device.kind == "battery":
                    assert env.lo == pytest.approx(own.clip(-min(caps)))
                else:
                    assert env.hi == pytest.approx(own.clip(min(caps)))


def test_behind_an_ems_the_heat_pumps_together_are_one_consumer() -> None:
    """Anlage 1 Ziff. 2.4.2: two 8 kW heat pumps and a battery behind one EMS are two
    consumers: the heat pumps' 16 kW (above 11 kW: 40 %, 6.4 kW) and the battery (4.2 kW)."""
    base = next(d for d in SITE.devices if d.kind == "battery")
    hp = SITE.heat_pump
    assert hp is not None
    pumps = [
        hp.model_copy(update={"id": "hp-a", "max_el_w": 8_000.0}),
        hp.model_copy(update={"id": "hp-b", "max_el_w": 8_000.0}),
    ]
    caps = consumption_caps_w([*pumps, base], None, ems=True)
    expected = 6_400.0 + simultaneity_factor(2) * FLOOR_14A_W  # the group's floor is the larger
    assert sum(caps.values()) == pytest.approx(expected)
    assert caps["hp-a"] == pytest.approx(caps["hp-b"])
    assert caps["hp-a"] + caps["hp-b"] == pytest.approx(expected * 6_400.0 / 10_600.0)
    # Counted one by one they would get more: each 4.2 kW, three consumers.
    one_by_one = FLOOR_14A_W + 2 * simultaneity_factor(3) * FLOOR_14A_W
    assert one_by_one > expected
    # One heat pump alone: its own floor, as before.
    assert consumption_caps_w([pumps[0]], None, ems=True)["hp-a"] == pytest.approx(FLOOR_14A_W)


def test_behind_an_ems_room_cooling_is_one_consumer_apart_from_the_heat_pumps() -> None:
    """Anlage 1 Ziff. 2.4.2 counts per case group: two 8 kW room-cooling devices are one
    consumer of 16 kW (40 %: 6.4 kW), an 8 kW heat pump another (4.2 kW), a battery a third
    (4.2 kW); the site file declares which device is room cooling."""
    data = SITE.model_dump(mode="json")
    hp_id = next(d["id"] for d in data["devices"] if d["kind"] == "heat_pump")
    for d in data["devices"]:
        if d["id"] == hp_id:
            d["enwg_14a_use"] = "room_cooling"
    declared = parse_site(data, "<cooling>")
    cooler = declared.heat_pump
    assert cooler is not None and cooler.enwg_14a_use == "room_cooling"
    assert SITE.heat_pump is not None and SITE.heat_pump.enwg_14a_use == "heating"
    coolers = [
        cooler.model_copy(update={"id": "cool-a", "max_el_w": 8_000.0}),
        cooler.model_copy(update={"id": "cool-b", "max_el_w": 8_000.0}),
    ]
    pump = SITE.heat_pump.model_copy(update={"id": "hp-a", "max_el_w": 8_000.0})
    battery = next(d for d in SITE.devices if d.kind == "battery")
    caps = consumption_caps_w([*coolers, pump, battery], None, ems=True)
    floors = [6_400.0, FLOOR_14A_W, FLOOR_14A_W]
    expected = 6_400.0 + simultaneity_factor(3) * 2 * FLOOR_14A_W
    assert ems_floor_w(floors) == pytest.approx(expected)
    assert sum(caps.values()) == pytest.approx(expected)
    assert caps["cool-a"] == pytest.approx(caps["cool-b"])
    assert caps["cool-a"] + caps["cool-b"] == pytest.approx(expected * 6_400.0 / sum(floors))
    assert caps["hp-a"] == pytest.approx(caps[battery.id])
    # Taken with the heat pumps as one 24 kW group it would be another figure (9.6 kW and
    # the battery): the grouping decides.
    together = 9_600.0 + simultaneity_factor(2) * FLOOR_14A_W
    assert sum(caps.values()) != pytest.approx(together)
    # Resolved from the site file: a §14a dim behind an EMS caps the declared room cooling.
    dim = Signal("box-1", SignalKind.CONSUMPTION, T0, ems=True)
    resolved = active_bounds(declared, [dim], T0)
    assert cooler.id in resolved.bounds


def test_a_bad_room_cooling_declaration_names_the_field() -> None:
    data = SITE.model_dump(mode="json")
    hp = next(d for d in data["devices"] if d["kind"] == "heat_pump")
    hp["enwg_14a_use"] = "cooling"
    with pytest.raises(ValueError, match=rf"devices\[{hp['id']}\]\.enwg_14a_use: .*'room_cooling'"):
        parse_site(data, "<bad>")
