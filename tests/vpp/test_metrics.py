"""The metrics collector against a real poll of a simulated site, a real plan, and edge cases.

Values are read back from the text exposition, so these tests check what Prometheus gets.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapters.bridge import ModbusBridge
from adapters.controls import ControlResult, Controls
from adapters.poll import FleetPoller
from adapters.sim.fleet import SimFleet
from adapters.snapshot import (
    BatteryReading,
    BreakerState,
    CommsHealth,
    DatacentreReading,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Snapshot,
)
from optimizer.inputs import State
from optimizer.plan import Plan
from optimizer.planner import plan
from optimizer.synthetic import synthetic_forecast, synthetic_site
from tests.conftest import free_ports
from vpp.city.metrics import AGENT_SPECS, COORDINATOR_SPECS
from vpp.city.metrics import UNITLESS as CITY_UNITLESS
from vpp.control.state import (
    ControllerState,
    JobStats,
    OperatorCap,
    SetpointStatus,
    SourceStatus,
)
from vpp.core.clock import ManualClock
from vpp.core.site import Site, parse_site
from vpp.metrics import HISTOGRAMS, SPECS, Metrics
from vpp.signals.metrics import SPECS as SIGNAL_SPECS
from vpp.signals.metrics import UNITLESS as SIGNAL_UNITLESS

NOON = datetime(2025, 6, 21, 10, 0, tzinfo=UTC)
R = TypeVar("R")
METRICS_MD = Path(__file__).resolve().parents[2] / "vpp" / "METRICS.md"


# -- a real state: a simulated site polled over Modbus and planned by the optimizer -----------


def heat_site() -> Site:
    """Two PV inverters, two batteries, the grid meter, heat pump and data centre; a store."""
    gateway, meters = free_ports(2)

    def at(port: int, unit: int) -> dict[str, Any]:
        return {"port": port, "unit": unit, "timeout_s": 0.5, "retries": 0}

    battery = {
        "kind": "battery",
        "capacity_wh": 10000,
        "max_charge_w": 5000,
        "max_discharge_w": 5000,
        "soc_initial_pct": 50,
    }
    return parse_site(
        {
            "site": {"name": "metrics-test"},
            "grid": {
                "import_limit_w": 2e6,
                "export_limit_w": 1e6,
                "meter": "meter",
                "base_load_peak_w": 50000,
                "base_load_annual_wh": 2e8,
            },
            "heat": {
                "store_capacity_wh": 2e6,
                "store_max_charge_th_w": 5e5,
                "store_max_discharge_th_w": 5e5,
                "boiler_max_th_w": 1e6,
                "annual_demand_wh": 3e9,
            },
            "optimizer": {"horizon_h": 4},
            "devices": [
                {
                    "id": "pv-a",
                    "kind": "pv",
                    "rated_w": 8000,
                    "modbus": at(gateway, 1),
                    "sim": {"sunspec_model": 103},
                },
                {
                    "id": "pv-b",
                    "kind": "pv",
                    "rated_w": 6000,
                    "modbus": at(gateway, 2),
                    "sim": {"sunspec_model": 113},
                },
                {
                    "id": "bat-a",
                    "modbus": at(gateway, 3),
                    "control": "124",
                    "sim": {"sunspec_model": 124},
                    **battery,
                },
                {
                    "id": "bat-b",
                    "modbus": at(gateway, 4),
                    "control": "802",
                    "sim": {"sunspec_model": 802},
                    **battery,
                },
                {"id": "meter", "kind": "meter", "modbus": at(meters, 1)},
                {"id": "hp", "kind": "heat_pump", "max_el_w": 300000, "modbus": at(meters, 2)},
                {"id": "dc", "kind": "datacentre", "it_power_w": 1e6, "modbus": at(meters, 3)},
            ],
        }
    )


async def poll_and_control(site: Site, clock: ManualClock) -> tuple[Snapshot, list[ControlResult]]:
    """Real polls and control writes of the simulated site over Modbus TCP on loopback.

    Polls, writes a PV limit, a battery and a heat pump setpoint, lets the plant follow for a
    minute and polls again; the clock ends at NOON.
    """
    async with (
        SimFleet(site, clock=clock, step_interval_s=None) as fleet,
        ModbusBridge() as bridge,
    ):
        poller = FleetPoller(site, bridge, clock)
        await poller.poll()
        controls = Controls(poller, revert_s=900)
        results = [
            await controls.set_pv_limit("pv-a", 60.0),
            await controls.set_battery_power("bat-a", -2000.0),
            await controls.set_heat_pump_power("hp", 150_000.0),
        ]
        fleet.step(60)
        return await poller.poll(), results


def reading_of(snap: Snapshot | None, device_id: str, kind: type[R]) -> R:
    """The device's reading, checked to be of ``kind`` with its values present."""
    assert snap is not None
    reading = snap.devices[device_id].reading
    assert isinstance(reading, kind), reading
    return reading


def planned(site: Site, snap: Snapshot, now: datetime) -> Plan:
    """A real plan from the measured batteries and a synthetic forecast."""
    socs = {}
    for dev in snap.of_kind("battery"):
        r = reading_of(snap, dev.id, BatteryReading)
        assert r.soc_pct is not None and r.capacity_wh is not None
        socs[dev.id] = r.soc_pct / 100 * r.capacity_wh
    forecast = synthetic_forecast(site, pd.Timestamp(now).floor("D"), 96)
    return plan(site, State(battery_soc_wh=socs), forecast, now)


def setpoint(
    result: ControlResult, now: datetime, asked: float, rated_w: float | None = None
) -> SetpointStatus:
    """The dispatch job's record of one control write; ``asked`` is the plan's value [W].
    The controller records a PV cap in W (the inverter took a percentage of ``rated_w``)."""
    quantity, scale = result.quantity, 1.0
    if quantity == "pv_limit_pct":
        assert rated_w is not None
        quantity, scale = "pv_limit_w", rated_w / 100.0
    return SetpointStatus(
        result.device_id,
        quantity,
        now,
        asked,
        result.requested * scale,
        result.written * scale,
        None if result.read_back is None else result.read_back * scale,
        result.ok,
        result.clamped,
    )


def record_controller_activity(
    state: ControllerState, now: datetime, results: list[ControlResult]
) -> None:
    """What the control jobs write into the state between scrapes."""
    asked = {"pv-a": 4800.0, "bat-a": -2500.0, "hp": 150_000.0}  # bat-a: clamped by safety
    rated = {d.id: float(d.rated_w) for d in state.site.pv}
    state.setpoints = {
        r.device_id: setpoint(r, now, asked[r.device_id], rated.get(r.device_id)) for r in results
    }
    state.plans_total, state.fallbacks_total, state.recorder_errors_total = 3, 1, 2
    state.cost_accrued_eur = 12.5
    state.heat_delivered_wh = {"heat_pump": 4.0e6, "boiler": 1.0e5}
    state.forecast_error_w = {"pv_w": -350.0, "load_w": 1200.0}
    state.pv_issued_weight = 0.8
    state.heat_level_error = 0.052
    state.forecast_scores = {
        "heat": {"mae_w": 5e4, "pinball_w": 2e4, "coverage_ratio": 0.75, "steps": 96.0},
        "load": {"mae_w": 3e3, "pinball_w": 1.5e3, "coverage_ratio": float("nan"), "steps": 4.0},
    }
    state.co2_forecast_score = {"mae_gkwh": 57.9, "bias_gkwh": -3.3, "steps": 96.0}
    state.readback_mismatches_total = {"bat-a": 4}
    state.setpoint_clamps_total = {"bat-a": 2}
    state.setpoint_refusals_total = {"pv-b": 1}
    state.caps = [
        OperatorCap(
            "import", 1.5e6, now - timedelta(hours=1), now + timedelta(hours=1), "feeder work"
        )
    ]
    state.jobs = {
        "poll": JobStats(runs=10, failures=1, misses=2, last_start=now, last_duration_s=0.2),
        "plan": JobStats(runs=3, last_start=now, last_duration_s=0.8),
    }
    state.sources = {
        "prices": SourceStatus("prices", last_success=now, failures=1),
        "weather": SourceStatus("weather", None, failures=5, stale=True),
    }


async def live_state(clock: ManualClock) -> ControllerState:
    """A ControllerState from a real poll and a real plan, plus what the jobs record.

    Sets ``clock`` to a minute before NOON for the plant to follow the writes; it ends at NOON.
    """
    site = heat_site()
    clock.set(NOON - timedelta(seconds=60))
    snap, results = await poll_and_control(site, clock)
    assert clock.now() == NOON
    state = ControllerState(site=site, started_at=NOON - timedelta(hours=1), snapshot=snap)
    state.plan, state.plan_created_at = planned(site, snap, clock.now()), clock.now()
    record_controller_activity(state, clock.now(), results)
    return state


# -- reading the exposition -------------------------------------------------------------------


class Exposition:
    """Samples of one scrape by name and labels."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.text = generate_latest(registry).decode()
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append((sample.labels, sample.value))

    def get(self, name: str, **labels: str) -> float | None:
        found = [v for lab, v in self.samples.get(name, []) if lab.items() >= labels.items()]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
        return found[0] if found else None

    def __call__(self, name: str, **labels: str) -> float:
        value = self.get(name, **labels)
        assert value is not None, f"no sample {name}{labels}"
        return value


def scrape(state: ControllerState, clock: ManualClock) -> Exposition:
    registry = CollectorRegistry()
    Metrics(state, registry, clock)
    return Exposition(registry)


# -- tests ------------------------------------------------------------------------------------


async def test_devices_are_exported_as_polled() -> None:
    clock = ManualClock(NOON)
    state = await live_state(clock)
    clock.advance(42)
    m = scrape(state, clock)
    snap = state.snapshot
    assert snap is not None and not snap.offline()
    poll_time = snap.devices["pv-a"].health.last_success
    assert poll_time is not None
    for dev in snap:
        r = dev.reading
        power = {
            PvReading: "ac_power_w",
            BatteryReading: "power_w",
            MeterReading: "power_w",
            HeatPumpReading: "el_power_w",
        }.get(type(r), "it_power_w")
        assert m("vpp_device_power_watts", device=dev.id, kind=dev.kind) == getattr(r, power)
        assert m("vpp_device_up", device=dev.id) == 1.0
        age = (clock.now() - poll_time).total_seconds()
        assert m("vpp_device_last_success_age_seconds", device=dev.id) == pytest.approx(age)
        assert m("vpp_device_comm_errors_total", device=dev.id) == 0.0
        assert m("vpp_device_breaker_state", device=dev.id, state="closed") == 1.0
        assert m("vpp_device_breaker_state", device=dev.id, state="open") == 0.0
    assert age == pytest.approx(42.0)
    for bat_id in ("bat-a", "bat-b"):
        soc_pct = reading_of(snap, bat_id, BatteryReading).soc_pct
        assert soc_pct is not None and m("vpp_device_soc_ratio", device=bat_id) == soc_pct / 100
    assert m("vpp_fleet_devices", kind="pv", state="online") == 2.0
    assert m("vpp_fleet_devices", kind="pv", state="offline") == 0.0
    pv_sum = sum(reading_of(snap, i, PvReading).ac_power_w or 0.0 for i in ("pv-a", "pv-b"))
    assert m("vpp_fleet_pv_power_watts") == pytest.approx(pv_sum)
    assert m("vpp_fleet_battery_capacity_watt_hours") == 20000.0
    meter = snap.devices["meter"].reading
    assert isinstance(meter, MeterReading) and meter.power_w is not None
    assert m("vpp_grid_import_watts") == max(meter.power_w, 0.0)
    assert m("vpp_grid_export_watts") == max(-meter.power_w, 0.0)
    assert m("vpp_snapshot_age_seconds") == pytest.approx(42.0)


async def test_heat_side_from_heat_pump_and_data_centre_readings() -> None:
    clock = ManualClock(NOON)
    state = await live_state(clock)
    m = scrape(state, clock)
    assert state.snapshot is not None
    hp = state.snapshot.devices["hp"].reading
    assert isinstance(hp, HeatPumpReading) and hp.th_power_w and hp.el_power_w
    assert m("vpp_heat_pump_cop_ratio", device="hp") == pytest.approx(hp.th_power_w / hp.el_power_w)
    assert m("vpp_heat_waste_heat_used_watts", device="hp") == pytest.approx(
        hp.th_power_w - hp.el_power_w
    )
    assert m("vpp_heat_pump_running", device="hp") == 1.0
    dc = reading_of(state.snapshot, "dc", DatacentreReading)
    assert dc.flow_m3_per_h is not None
    assert m("vpp_heat_waste_heat_offered_watts", device="dc") == dc.waste_heat_w
    flow = m("vpp_datacentre_water_flow_cubic_meters_per_second", device="dc")
    assert flow == pytest.approx(dc.flow_m3_per_h / 3600)
    assert m("vpp_heat_delivered_watt_hours_total", source="boiler") == 1.0e5
    assert m("vpp_store_capacity_watt_hours") == 2e6


async def test_plan_values_are_those_of_the_current_step() -> None:
    clock = ManualClock(NOON)
    state = await live_state(clock)
    clock.advance(20 * 60)  # 10:20, inside the second quarter hour of the plan
    m = scrape(state, clock)
    assert state.plan is not None
    row = state.plan.frame.loc[datetime(2025, 6, 21, 10, 15, tzinfo=UTC)]
    assert m("vpp_plan_status", status="optimal") == 1.0
    assert m("vpp_plan_status", status="fallback") == 0.0
    assert m("vpp_plan_status", status="none") == 0.0
    assert m("vpp_plan_age_seconds") == 1200.0
    assert m("vpp_plan_time_limit_seconds") == state.site.optimizer.time_limit_s
    assert m("vpp_plan_grid_import_watts") == pytest.approx(row["grid_import_w"])
    assert m("vpp_plan_store_energy_watt_hours") == pytest.approx(row["store_wh"])
    assert m("vpp_plan_heat_pump_cop_ratio") == pytest.approx(row["heat_pump_cop"])
    assert m("vpp_price_import_euros_per_megawatt_hour") == pytest.approx(
        row["price_import_eur_per_mwh"]
    )
    info = state.plan.info
    assert m("vpp_plan_objective_euros") == pytest.approx(info.objective_eur)
    assert m("vpp_plan_variables") == info.n_variables > 0
    assert m("vpp_plan_cost_euros", part="cost_import") == pytest.approx(
        info.cost_eur["cost_import_eur"]
    )
    assert m("vpp_plan_slack_watt_hours", slack="unmet_heat") == info.slacks.get(
        "unmet_heat_wh", 0.0
    )
    assert m("vpp_plans_total") == 3.0 and m("vpp_plan_fallbacks_total") == 1.0
    clock.advance(5 * 3600)  # past the 4 h horizon: no current step, the age goes on
    late = scrape(state, clock)
    assert late.get("vpp_plan_grid_import_watts") is None
    assert late("vpp_plan_age_seconds") == 1200.0 + 5 * 3600


async def test_fallback_plan_is_flagged_without_an_objective() -> None:
    clock = ManualClock(NOON)
    state = await live_state(clock)
    assert state.plan is not None
    info = dataclasses.replace(
        state.plan.info, status="fallback", objective_eur=None, fallback_reason="solver time limit"
    )
    state.plan = dataclasses.replace(state.plan, info=info)
    m = scrape(state, clock)
    assert m("vpp_plan_status", status="fallback") == 1.0
    assert m("vpp_plan_status", status="optimal") == 0.0
    assert m.get("vpp_plan_objective_euros") is None


async def test_controller_records_setpoints_caps_jobs_and_sources() -> None:
    clock = ManualClock(NOON)
    state = await live_state(clock)
    clock.advance(5)
    m = scrape(state, clock)
    sp = state.setpoints["bat-a"]
    bat = {"device": "bat-a", "quantity": sp.quantity.removesuffix("_w")}
    assert m("vpp_setpoint_watts", **bat, stage="planned") == -2500.0
    assert m("vpp_setpoint_watts", **bat, stage="requested") == -2000.0
    assert m("vpp_setpoint_watts", **bat, stage="read_back") == sp.read_back_w
    assert m("vpp_setpoint_ratio", device="pv-a", quantity="pv_limit", stage="written") == 0.6
    assert m("vpp_device_pv_limit_ratio", device="pv-a") == 0.6  # the inverter took it
    reading = reading_of(state.snapshot, "bat-a", BatteryReading)
    assert m("vpp_setpoint_measured_watts", **bat) == reading.power_w
    assert reading.power_w == pytest.approx(-2000.0, abs=50)  # the battery follows
    hp_el = m("vpp_setpoint_measured_watts", device="hp", quantity="heat_pump_el")
    assert hp_el == m("vpp_device_power_watts", device="hp")
    assert m("vpp_setpoint_ok", device="pv-a") == 1.0
    assert m("vpp_setpoint_age_seconds", device="pv-a") == 5.0
    assert m("vpp_setpoint_readback_mismatches_total", device="bat-a") == 4.0
    assert m("vpp_setpoint_clamps_total", device="bat-a") == 2.0
    assert m("vpp_setpoint_refusals_total", device="pv-b") == 1.0
    assert m("vpp_grid_import_limit_watts") == 1.5e6  # the operator cap, below the site's 2 MW
    assert m("vpp_grid_export_limit_watts") == 1e6
    assert m("vpp_operator_caps_active", direction="import") == 1.0
    assert m("vpp_job_runs_total", task="poll") == 10.0
    assert m("vpp_job_misses_total", task="poll") == 2.0
    assert m("vpp_job_last_run_age_seconds", task="plan") == 5.0
    assert m("vpp_source_stale", source="weather") == 1.0
    assert m("vpp_source_failures_total", source="weather") == 5.0
    assert m.get("vpp_source_last_success_age_seconds", source="weather") is None
    assert m("vpp_forecast_error_watts", quantity="pv") == -350.0
    assert m("vpp_forecast_mae_watts", quantity="heat") == 5e4
    assert m("vpp_forecast_pinball_watts", quantity="heat") == 2e4
    assert m("vpp_forecast_coverage_ratio", quantity="heat") == 0.75
    assert m("vpp_forecast_scored_steps", quantity="load") == 4.0
    assert m.get("vpp_forecast_coverage_ratio", quantity="load") is None  # rule forecasts
    assert m("vpp_forecast_pv_issued_weight_ratio") == 0.8
    assert m("vpp_forecast_heat_level_error_ratio") == 0.052
    assert m("vpp_forecast_co2_mae_grams_per_kilowatt_hour") == 57.9
    assert m("vpp_forecast_co2_bias_grams_per_kilowatt_hour") == -3.3
    assert m("vpp_cost_accrued_euros") == 12.5
    assert m("vpp_recorder_errors_total") == 2.0
    clock.advance(2 * 3600)  # the cap has ended
    assert scrape(state, clock)("vpp_grid_import_limit_watts") == 2e6


def test_fresh_start_without_snapshot_or_plan() -> None:
    site = synthetic_site(3, 2, heat=False)
    state = ControllerState(site=site, started_at=NOON, dry_run=True)
    m = scrape(state, ManualClock(NOON + timedelta(seconds=30)))
    assert m("vpp_plan_status", status="none") == 1.0
    assert m("vpp_plan_status", status="optimal") == 0.0
    assert m("vpp_uptime_seconds") == 30.0 and m("vpp_dry_run") == 1.0
    assert m("vpp_grid_import_limit_watts") == site.grid.import_limit_w
    assert m("vpp_plan_fallbacks_total") == 0.0
    assert m("vpp_heat_delivered_watt_hours_total", source="heat_pump") == 0.0
    for absent in (
        "vpp_device_up",
        "vpp_plan_age_seconds",
        "vpp_snapshot_age_seconds",
        "vpp_plan_grid_import_watts",
        "vpp_fleet_pv_power_watts",
    ):
        assert absent not in m.samples


def test_offline_device_keeps_its_last_reading_but_leaves_the_fleet_sums() -> None:
    site = synthetic_site(2, 1, heat=False)
    t_ok = NOON - timedelta(seconds=100)
    ok = CommsHealth(last_success=NOON, last_attempt=NOON, latency_s=0.02)
    dead = CommsHealth(
        last_success=t_ok,
        last_attempt=NOON,
        consecutive_failures=3,
        error_count=5,
        breaker=BreakerState.OPEN,
        last_error="pv-00001: timeout",
    )
    never = CommsHealth(last_attempt=NOON, consecutive_failures=1, error_count=1)
    snap = Snapshot(
        NOON,
        {
            "pv-00000": DeviceState("pv-00000", "pv", PvReading(1000.0, None, None, None, 4e3), ok),
            "pv-00001": DeviceState(
                "pv-00001", "pv", PvReading(700.0, None, None, None, 4e3), dead
            ),
            "bat-00000": DeviceState("bat-00000", "battery", None, never),
        },
    )
    state = ControllerState(site=site, started_at=NOON, snapshot=snap)
    m = scrape(state, ManualClock(NOON))
    assert m("vpp_device_up", device="pv-00001") == 0.0
    assert m("vpp_device_power_watts", device="pv-00001") == 700.0  # as last read
    assert m("vpp_device_last_success_age_seconds", device="pv-00001") == 100.0
    assert m("vpp_device_consecutive_failures", device="pv-00001") == 3.0
    assert m("vpp_device_comm_errors_total", device="pv-00001") == 5.0
    assert m("vpp_device_breaker_state", device="pv-00001", state="open") == 1.0
    assert m("vpp_device_breaker_state", device="pv-00001", state="closed") == 0.0
    assert m("vpp_fleet_pv_power_watts") == 1000.0  # online inverters only
    assert m("vpp_fleet_devices", kind="pv", state="offline") == 1.0
    assert m("vpp_fleet_devices", kind="battery", state="offline") == 1.0
    assert m.get("vpp_device_last_success_age_seconds", device="bat-00000") is None
    assert m.get("vpp_device_power_watts", device="bat-00000") is None


def test_histograms_record_plans_and_jobs_on_the_given_registry() -> None:
    site = synthetic_site(1, 1, heat=False)
    registry = CollectorRegistry()
    metrics = Metrics(ControllerState(site=site, started_at=NOON), registry, ManualClock(NOON))
    fc = synthetic_forecast(site, "2025-06-21", 96)
    info = plan(site, State.from_site(site), fc, NOON).info
    metrics.observe_plan(info)
    metrics.observe_job("poll", 0.03)
    metrics.observe_job("poll", 0.2)
    m = Exposition(registry)
    assert m("vpp_plan_solve_seconds_count") == 1.0
    assert m("vpp_plan_total_seconds_sum") == pytest.approx(info.total_s)
    assert m("vpp_plan_build_seconds_sum") == pytest.approx(info.build_s)
    assert m("vpp_job_duration_seconds_count", task="poll") == 2.0
    assert m("vpp_job_duration_seconds_bucket", task="poll", le="0.05") == 1.0
    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("vpp_")]
    with pytest.raises(ValueError, match="Duplicated"):  # one set of metrics per registry
        Metrics(ControllerState(site=site, started_at=NOON), registry, ManualClock(NOON))


def documented() -> dict[str, str]:
    """Metric name -> type from the table in vpp/METRICS.md."""
    rows = re.findall(
        r"^\| `(vpp_\w+)` \| (\w+) \|", METRICS_MD.read_text(encoding="utf-8"), re.MULTILINE
    )
    return dict(rows)


def exported_names() -> dict[str, str]:
    """Names as Prometheus sees them (counters with ``_total``) -> type."""
    specs = (*SPECS, *SIGNAL_SPECS, *AGENT_SPECS, *COORDINATOR_SPECS)
    names = {s.name + ("_total" if s.type == "counter" else ""): s.type for s in specs}
    return names | {h.name: h.type for h in HISTOGRAMS}


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    assert documented() == exported_names()


def test_names_follow_the_conventions() -> None:
    units = (
        "_watts",
        "_watt_hours",
        "_ratio",
        "_seconds",
        "_euros",
        "_celsius",
        "_total",
        "_per_second",
        "_per_megawatt_hour",
        "_per_kilowatt_hour",
        "_bytes",
    )
    counts = (
        {
            "vpp_device_up",
            "vpp_dry_run",
            "vpp_health_state",
            "vpp_device_consecutive_failures",
            "vpp_device_breaker_state",
            "vpp_fleet_devices",
            "vpp_operator_caps_active",
            "vpp_heat_pump_running",
            "vpp_setpoint_ok",
            "vpp_plan_status",
            "vpp_plan_variables",
            "vpp_plan_constraints",
            "vpp_source_stale",
            "vpp_controller_info",
            "vpp_devices_quarantined",
            "vpp_recorder_pending",
            "vpp_forecast_scored_steps",
        }
        | SIGNAL_UNITLESS
        | CITY_UNITLESS
    )  # unitless: states, flags and counts
    for name in exported_names():
        assert name.startswith("vpp_") and name == name.lower()
        assert name in counts or name.endswith(units), name


def test_collect_and_exposition_time_for_1000_devices(capsys: pytest.CaptureFixture[str]) -> None:
    """Reported, not asserted: the machine is shared."""
    site = synthetic_site(500, 500, heat=False)
    health = CommsHealth(last_success=NOON, last_attempt=NOON, latency_s=0.01)
    readings: Mapping[str, Any] = {
        "pv": PvReading(1000.0, 1e6, 1100.0, "MPPT", 4000.0, 80.0),
        "battery": BatteryReading(55.0, -100.0, 10000.0, 5000.0, 5000.0),
    }
    snap = Snapshot(
        NOON,
        {
            d.id: DeviceState(d.id, str(d.kind), readings[d.kind], health, NOON)
            for d in site.devices
        },
    )
    registry = CollectorRegistry()
    Metrics(ControllerState(site=site, started_at=NOON, snapshot=snap), registry, ManualClock(NOON))
    best_collect = best_total = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        families = list(registry.collect())
        t1 = time.perf_counter()
        body = generate_latest(registry)
        t2 = time.perf_counter()
        best_collect, best_total = min(best_collect, t1 - t0), min(best_total, t2 - t1)
    samples = sum(len(f.samples) for f in families)
    with capsys.disabled():
        print(
            f"\n1000 devices: collect {best_collect * 1e3:.1f} ms, collect + exposition "
            f"{best_total * 1e3:.1f} ms, {samples} samples, {len(body) / 1e3:.0f} kB"
        )
    assert samples > 8 * len(site.devices)
