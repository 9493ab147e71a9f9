"""The invariants on the setpoint pipeline's output, envelopes with extra bounds, enforce."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.snapshot import BatteryReading, Reading
from tests.vpp.control.snapshots import T0, battery, heat_pump, pv, snapshot
from vpp.control.envelope import Bound, Envelope, envelope, envelopes, intersect
from vpp.control.invariants import Limits, enforce, safe_setpoints, violations
from vpp.control.plausible import screen
from vpp.control.safety import Setpoint, battery_window_w, check_setpoints, guard_grid
from vpp.control.state import OperatorCap
from vpp.core.site import BatteryDevice, DeviceKind, HeatPumpDevice, PvDevice
from vpp.testing.harness import small_site

SITE = small_site()
BAT: BatteryDevice = SITE.batteries[0]
BAT2: BatteryDevice = SITE.batteries[1]
PV: PvDevice = SITE.pv[0]
_hp = SITE.heat_pump
assert _hp is not None
HP: HeatPumpDevice = _hp
LIMITS = Limits(SITE.grid.import_limit_w, SITE.grid.export_limit_w)
H = 900.0


def readings(**soc: float) -> dict[str, Reading]:
    out: dict[str, Reading] = {b.id: battery(b, soc.get(b.id, 50.0)) for b in SITE.batteries}
    out.update({p.id: pv(p, 0.5) for p in SITE.pv})
    out[HP.id] = heat_pump(5000.0)
    return out


def sp(device_id: str, kind: DeviceKind, value: float) -> Setpoint:
    return Setpoint(device_id, kind, value, value)


def test_envelope_is_the_battery_window_and_names_its_edges() -> None:
    snap = snapshot(SITE, 0.0, readings())
    reading = snap.devices[BAT.id].reading
    assert isinstance(reading, BatteryReading)
    env = envelope(SITE, snap, BAT.id, H)
    assert env is not None
    assert (env.lo, env.hi) == battery_window_w(BAT, reading, H)
    low = snapshot(SITE, 0.0, readings(**{BAT.id: BAT.soc_min_pct + 1}))
    env = envelope(SITE, low, BAT.id, H)
    assert env is not None and env.hi_source == "state of charge" and env.lo_source == "rating"
    assert envelope(SITE, snap, SITE.grid.meter or "", H) is None
    assert set(envelopes(SITE, snap, H)) == {d.id for d in SITE.batteries + SITE.pv + [HP]}


def test_extra_bounds_narrow_the_envelope_but_never_widen_or_leave_it() -> None:
    snap = snapshot(SITE, 0.0, readings())
    # A §14a-style floor: charging at most 4.2 kW; the heat pump at most 4.2 kW; a §9 EEG-
    # style feed-in cap: PV at most 70 %.
    bounds = {
        BAT.id: [Bound(-4200.0, math.inf, "§14a EnWG")],
        HP.id: [Bound(-math.inf, 4200.0, "§14a EnWG")],
        PV.id: [Bound(-math.inf, 0.7 * PV.rated_w, "§9 EEG 70 %")],
    }
    env = envelope(SITE, snap, BAT.id, H, bounds[BAT.id])
    assert env is not None and env.lo == -4200.0 and env.lo_source == "§14a EnWG"
    asked = [
        sp(BAT.id, DeviceKind.BATTERY, -5000.0),
        sp(HP.id, DeviceKind.HEAT_PUMP, 10_000.0),
        sp(PV.id, DeviceKind.PV, PV.rated_w),
    ]
    out = check_setpoints(SITE, snap, asked, H, bounds)
    assert [s.power_w for s in out] == [-4200.0, 4200.0, pytest.approx(0.7 * PV.rated_w)]
    assert all("§" in s.reason for s in out)
    limits = Limits(LIMITS.import_w, LIMITS.export_w, bounds)
    assert violations(SITE, snap, out, limits, H) == []
    found = violations(SITE, snap, asked, limits, H)
    assert [(v.device_id, v.bound, v.kind) for v in found] == [
        (BAT.id, -4200.0, "envelope"),
        (HP.id, 4200.0, "envelope"),
        (PV.id, pytest.approx(0.7 * PV.rated_w), "envelope"),
    ]
    # A bound that does not overlap the device's own envelope pins it to the nearest edge.
    env = intersect([Bound(-5000, 5000, "rating"), Bound(6000, 7000, "odd signal")])
    assert env == Envelope(5000, 5000, "odd signal", "rating")
    with pytest.raises(ValueError, match="lo"):
        Bound(1.0, 0.0, "backwards")


def test_violations_name_device_value_bound_and_reason() -> None:
    snap = snapshot(SITE, 0.0, readings(**{BAT.id: BAT.soc_min_pct}), down=frozenset({BAT2.id}))
    meter = SITE.grid.meter
    assert meter is not None
    batch = [
        sp(BAT.id, DeviceKind.BATTERY, 1000.0),  # no energy left above the window
        sp(PV.id, DeviceKind.PV, 0.0),  # below the inverter's minimum
        sp(HP.id, DeviceKind.HEAT_PUMP, math.nan),
        sp(BAT2.id, DeviceKind.BATTERY, 0.0),  # offline
        sp(meter, DeviceKind.BATTERY, 0.0),  # a meter takes no setpoint
        sp("nope", DeviceKind.BATTERY, 0.0),
        sp(SITE.pv[1].id, DeviceKind.PV, 0.5 * SITE.pv[1].rated_w),
        sp(SITE.pv[1].id, DeviceKind.PV, 0.6 * SITE.pv[1].rated_w),
    ]
    found = {(v.device_id, v.kind): v for v in violations(SITE, snap, batch, LIMITS, H)}
    assert set(found) == {
        (BAT.id, "envelope"),
        (PV.id, "envelope"),
        (HP.id, "not_finite"),
        (BAT2.id, "offline"),
        (meter, "not_controllable"),
        ("nope", "unknown_device"),
        (SITE.pv[1].id, "duplicate"),
    }
    v = found[(BAT.id, "envelope")]
    assert (v.quantity, v.value, v.bound) == ("battery_w", 1000.0, 0.0)
    assert "state of charge" in v.reason and str(v).startswith(f"{BAT.id}: battery_w 1000")
    assert found[(PV.id, "envelope")].bound == pytest.approx(PV.min_limit_pct / 100 * PV.rated_w)
    assert "timeout" in found[(BAT2.id, "offline")].reason


def test_a_quarantined_device_may_not_be_written() -> None:
    values = readings()
    values[BAT.id] = battery(BAT, 140.0)
    screened = screen(SITE, snapshot(SITE, 0.0, values)).snapshot
    [v] = violations(SITE, screened, [sp(BAT.id, DeviceKind.BATTERY, 0.0)], LIMITS, H)
    assert v.kind == "offline" and "quarantined" in v.reason


def test_an_unguarded_push_past_a_limit_is_a_violation_and_the_guarded_batch_passes() -> None:
    imp = LIMITS.import_w
    snap = snapshot(SITE, imp - 3000.0, readings())
    batch = [sp(b.id, DeviceKind.BATTERY, -2500.0) for b in SITE.batteries[:2]]
    found = violations(SITE, snap, check_setpoints(SITE, snap, batch, H), LIMITS, H)
    assert {v.kind for v in found} == {"grid_import"} and len(found) == 2
    assert all(v.bound == imp for v in found)
    guarded = guard_grid(SITE, snap, check_setpoints(SITE, snap, batch, H), imp, LIMITS.export_w)
    assert violations(SITE, snap, guarded, LIMITS, H) == []
    # Already past the limit: no push at all, but relief is fine.
    over = snapshot(SITE, imp + 10_000.0, readings())
    relief = [sp(b.id, DeviceKind.BATTERY, 2000.0) for b in SITE.batteries[:2]]
    assert violations(SITE, over, relief, LIMITS, H) == []
    assert len(violations(SITE, over, batch, LIMITS, H)) == 2


def test_enforce_passes_what_may_be_written_and_reports_the_rest() -> None:
    snap = snapshot(SITE, 0.0, readings(**{BAT.id: BAT.soc_min_pct}))
    batch = [sp(BAT.id, DeviceKind.BATTERY, 1000.0), sp(PV.id, DeviceKind.PV, 0.8 * PV.rated_w)]
    result = enforce(SITE, snap, batch, LIMITS, H)
    assert [s.device_id for s in result.passed] == [PV.id]
    assert [(v.device_id, v.kind) for v in result.violations] == [(BAT.id, "envelope")]
    # The whole pipeline clamps first, so nothing is left to refuse.
    result = safe_setpoints(SITE, snap, batch, LIMITS, H)
    assert [s.power_w for s in result.passed] == [0.0, 0.8 * PV.rated_w]
    assert result.violations == []


def test_limits_follow_the_active_operator_caps() -> None:
    cap = OperatorCap("export", 20_000.0, T0, T0 + timedelta(hours=1))
    limits = Limits.at(SITE, [cap], T0)
    assert (limits.import_w, limits.export_w) == (SITE.grid.import_limit_w, 20_000.0)
    assert Limits.at(SITE, [cap], T0 + timedelta(hours=1)).export_w == SITE.grid.export_limit_w


_EDGE = st.floats(-1e6, 1e6) | st.sampled_from([-math.inf, math.inf, 0.0])


@given(st.lists(st.tuples(_EDGE, _EDGE, st.sampled_from(["a", "b", "c"])), max_size=6))
def test_intersect_is_narrowing_one_bound_after_the_other(
    raw: list[tuple[float, float, str]],
) -> None:
    """The envelope of a list of bounds is the whole range narrowed by each bound in turn
    (Envelope.narrow: the first bound takes precedence, none leaves the envelope so far)."""
    bounds = [Bound(min(a, b), max(a, b), src) for a, b, src in raw]
    want = Envelope(-math.inf, math.inf, "", "")
    for bound in bounds:
        want = want.narrow(bound)
    assert intersect(bounds) == want
