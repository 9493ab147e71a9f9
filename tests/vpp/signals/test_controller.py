"""The controller with grid-operator signals: simulated devices and control boxes on loopback,
the real bridge, poller and controls, a manual clock. A signal is enforced at the next read
of the sources (the ``signals`` job), on what the devices hold, without a new plan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from adapters.controlbox import ControlBoxReader
from adapters.sim.controlbox import SimControlBox
from adapters.sim.server import ControlBoxServer
from optimizer.plan import Plan, SolveInfo
from tests.conftest import LOOPBACK, free_ports
from vpp.core.site import Site, parse_site
from vpp.signals import Signal, SignalKind
from vpp.signals.metrics import GridSignalCollector
from vpp.signals.rules import FLOOR_14A_W, device_floor_w
from vpp.signals.watch import SignalWatch
from vpp.testing.harness import Plant, plant, small_site

T0 = datetime(2026, 6, 21, 10, 1, tzinfo=UTC)
POLL_S = 5.0


def signal_site() -> Site:
    """The small site, batteries and heat pump under §14a, two control boxes: ``box-1`` for
    every device, ``box-2`` for the PV inverters only."""
    data = small_site().model_dump(mode="json")
    for d in data["devices"]:
        if d["kind"] in ("battery", "heat_pump"):
            d["enwg_14a"] = True
    ports = free_ports(2)
    pv = [d["id"] for d in data["devices"] if d["kind"] == "pv"]
    data["signals"] = {
        "poll_interval_s": POLL_S,
        "sources": [
            {"id": "box-1", "modbus": {"port": ports[0], "timeout_s": 0.3, "retries": 0},
             "heartbeat_timeout_s": 30.0, "failsafe_feed_in_pct": 30.0},
            {"id": "box-2", "modbus": {"port": ports[1], "timeout_s": 0.3, "retries": 0},
             "heartbeat_timeout_s": 30.0, "devices": pv},
        ],
    }  # fmt: skip
    return parse_site(data, "<signals>")


def full_plan(site: Site, start: datetime) -> Plan:
    """Every PV inverter uncapped, every battery charging at its rating, the heat pump at
    full power, for two hours."""
    index = pd.date_range(start.replace(minute=0), periods=8, freq="15min", tz="UTC")
    cols: dict[str, Any] = {
        "price_import_eur_per_mwh": 100.0,
        "price_export_eur_per_mwh": 50.0,
        "heat_pump_el_w": site.heat_pump.max_el_w,  # type: ignore[union-attr]
    }
    cols |= {f"{p.id}.pv_limit_w": p.rated_w for p in site.pv}
    cols |= {f"{b.id}.battery_w": -b.max_charge_w for b in site.batteries}
    info = SolveInfo(
        "optimal", "device", 0.0, {}, 0.0, 0.0, 0.0, 0.0, 0, 0, {}, False, {}
    )  # fmt: skip
    return Plan(pd.DataFrame(cols, index=index), info, pd.DataFrame(index=index))


@dataclass
class Rig:
    p: Plant
    boxes: dict[str, SimControlBox]

    @property
    def ctl(self) -> Any:
        return self.p.ctl

    async def tick(self, seconds: float = POLL_S) -> None:
        """Time passes; the signal sources are read (one poll of the signals job)."""
        self.p.fleet.step(seconds)  # advances the manual clock too
        await self.ctl.run_job("signals")

    def pv_cap_w(self, device_id: str) -> float:
        """The cap the inverter holds [W]."""
        state = self.p.fleet.device(device_id).state
        rated = self.p.fleet.device(device_id).config.rated_w
        return float(state.limit_setting_pct if state.limit_enabled else 100.0) / 100 * rated

    def charge_w(self, device_id: str) -> float:
        """How much the battery is told to charge [W] (its setpoint, > 0 discharges)."""
        return -float(self.p.fleet.device(device_id).state.setpoint_w)

    def written_at(self, device_id: str) -> float | None:
        return self.p.fleet.device(device_id).state.last_write_s  # type: ignore[no-any-return]

    def events(self, kind: str) -> list[Any]:
        return [e for e in self.ctl.state.events if e.kind == kind]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    site = signal_site()
    async with plant(site, T0) as p:
        boxes = {s.id: SimControlBox(s, p.clock) for s in site.signals.sources}
        servers = [ControlBoxServer(LOOPBACK, b.config.modbus.port, b) for b in boxes.values()]
        for server in servers:
            await server.start()
        try:
            p.ctl.signal_watch = SignalWatch.for_site(
                site, lambda cfg: ControlBoxReader(p.bridge, cfg).read, p.clock.now()
            )
            await p.ctl.run_job("poll")
            p.ctl.state.plan = full_plan(site, T0)
            p.ctl.state.plan_created_at = T0
            await p.ctl.run_job("signals")
            assert await p.ctl.run_job("dispatch")
            yield Rig(p, boxes)
        finally:
            for server in servers:
                await server.stop()


async def test_every_eeg_inverter_follows_a_relay_flip_within_one_poll(rig: Rig) -> None:
    site = rig.ctl.site
    for pv in site.pv:
        assert rig.pv_cap_w(pv.id) == pytest.approx(pv.rated_w, rel=1e-3)
    rig.boxes["box-1"].set_feed_in(60)
    await rig.tick()
    now_s = rig.p.clock.now().timestamp()
    for pv in site.pv:
        assert rig.written_at(pv.id) == pytest.approx(now_s)
        assert rig.pv_cap_w(pv.id) <= 0.6 * pv.rated_w + 1.0
    assert [e.kind for e in rig.events("signal_changed")] == ["signal_changed"]
    # The keep-alive and the next dispatch keep the cap: every write passes the signals.
    await rig.ctl.run_job("keepalive")
    await rig.ctl.run_job("dispatch")
    for pv in site.pv:
        assert rig.pv_cap_w(pv.id) <= 0.6 * pv.rated_w + 1.0
    # Back to 100 %: the plan's caps again, at the next poll.
    rig.boxes["box-1"].set_feed_in(100)
    await rig.tick()
    for pv in site.pv:
        assert rig.pv_cap_w(pv.id) == pytest.approx(pv.rated_w, rel=1e-3)


async def test_zero_percent_holds_each_inverter_at_its_minimum_and_reports_it(rig: Rig) -> None:
    rig.boxes["box-1"].set_feed_in(0)
    await rig.tick()
    for pv in rig.ctl.site.pv:
        minimum = pv.min_limit_pct / 100 * pv.rated_w
        assert rig.pv_cap_w(pv.id) == pytest.approx(minimum, rel=1e-3)
    assert len(rig.events("signal_not_compliant")) == len(rig.ctl.site.pv)
    assert not rig.events("setpoint_unsafe")


async def test_a_14a_dim_never_takes_a_consumer_below_its_floor(rig: Rig) -> None:
    site = rig.ctl.site
    before = {b.id: rig.charge_w(b.id) for b in site.batteries}
    rig.boxes["box-1"].set_dim(True)
    await rig.tick()
    for bat in site.batteries:
        floor = device_floor_w(bat)
        expected = min(before[bat.id], floor)  # dimmed to the floor, not below it
        assert rig.charge_w(bat.id) == pytest.approx(expected, abs=1.0), bat.id
        assert floor == FLOOR_14A_W
    hp = site.heat_pump
    assert hp is not None
    hp_state = rig.p.fleet.device(hp.id).state
    assert hp_state.setpoint_w == pytest.approx(device_floor_w(hp), abs=1.0)  # 40 % of 20 kW
    rig.boxes["box-1"].set_dim(False)
    await rig.tick()
    assert rig.charge_w(site.batteries[0].id) == pytest.approx(before[site.batteries[0].id])


async def test_heartbeat_loss_triggers_the_failsafe_and_recovery_ends_it(rig: Rig) -> None:
    site = rig.ctl.site
    rig.boxes["box-1"].stop_heartbeat()
    for _ in range(6):  # 30 s: at the timeout
        await rig.tick()
    assert not rig.events("signal_failsafe_on")
    await rig.tick()
    [event] = rig.events("signal_failsafe_on")
    assert event.level == "error"
    for pv in site.pv:  # failsafe_feed_in_pct = 30
        assert rig.pv_cap_w(pv.id) <= 0.3 * pv.rated_w + 1.0
    for bat in site.batteries:  # failsafe_consumption_w = 4200, the floor
        assert rig.charge_w(bat.id) <= 4200.0 + 1.0
    rig.boxes["box-1"].start_heartbeat()
    await rig.tick()
    assert rig.events("signal_failsafe_off")
    for pv in site.pv:
        assert rig.pv_cap_w(pv.id) == pytest.approx(pv.rated_w, rel=1e-3)


async def test_conflicting_signals_resolve_to_the_stricter_with_an_event(rig: Rig) -> None:
    rig.boxes["box-1"].set_feed_in(60)
    rig.boxes["box-2"].set_feed_in(30)
    await rig.tick()
    for pv in rig.ctl.site.pv:
        assert rig.pv_cap_w(pv.id) <= 0.3 * pv.rated_w + 1.0
    [event] = rig.events("signal_conflict")
    assert "box-2: feed-in 30 % wins over box-1: feed-in 60 %" in event.message
    await rig.tick()
    assert len(rig.events("signal_conflict")) == 1  # reported when it starts


async def test_a_bad_payload_is_an_error_event_and_changes_nothing(rig: Rig) -> None:
    rig.boxes["box-1"].set_feed_in(60)
    await rig.tick()
    caps = {pv.id: rig.pv_cap_w(pv.id) for pv in rig.ctl.site.pv}
    resolved = rig.ctl.state.grid_signals
    box = rig.boxes["box-1"]
    box.contacts["feed_in_0"] = True  # 60 % and 0 % closed at once
    await rig.tick()
    [event] = rig.events("signal_bad_payload")
    assert event.level == "error"
    assert "relays 60 % and 0 % are closed at once" in event.message
    assert rig.ctl.state.grid_signals.bounds == resolved.bounds
    assert {pv.id: rig.pv_cap_w(pv.id) for pv in rig.ctl.site.pv} == caps
    assert rig.p.clock.now() - T0 < timedelta(minutes=1)


async def test_the_law_s_rules_hold_without_any_source() -> None:
    """A new PV system without a gateway is held at 60 % of its peak from the first signals
    poll, with no control box; a negative-price window caps the site's export at 0 W and
    ends when the price does."""
    data = small_site().model_dump(mode="json")
    pv_data = next(d for d in data["devices"] if d["kind"] == "pv")
    pv_data["commissioned_on"] = "2025-04-01"
    site = parse_site(data, "<law>")
    held = site.pv[0]
    async with plant(site, T0) as p:
        assert p.ctl.signal_watch is not None  # made for the rules alone
        rig = Rig(p, {})
        await p.ctl.run_job("poll")
        p.ctl.state.plan = full_plan(site, T0)
        p.ctl.state.plan_created_at = T0
        quarter = pd.Timestamp(T0.replace(minute=15))
        p.ctl.signal_watch.set_prices(
            pd.Series(
                [-5.0, -5.0], index=pd.DatetimeIndex([quarter, quarter + pd.Timedelta("15min")])
            )
        )
        await rig.tick()
        assert await p.ctl.run_job("dispatch")
        assert rig.pv_cap_w(held.id) <= 0.6 * held.dc_peak_w + 1.0
        for other in site.pv[1:]:
            assert rig.pv_cap_w(other.id) == pytest.approx(other.rated_w, rel=1e-3)
        assert p.ctl.state.grid_signals.export_cap_w is None
        # Into the negative-price window: zero export at the next poll.
        for _ in range(
            int((quarter.to_pydatetime() - p.clock.now()).total_seconds() // POLL_S) + 1
        ):
            await rig.tick()
        assert p.ctl.state.grid_signals.export_cap_w == 0.0
        # Out of it again after half an hour.
        for _ in range(int(1800 // POLL_S)):
            await rig.tick()
        assert p.ctl.state.grid_signals.export_cap_w is None
        assert rig.pv_cap_w(held.id) <= 0.6 * held.dc_peak_w + 1.0


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_compliance_and_metrics_follow_what_the_devices_hold(rig: Rig) -> None:
    registry = CollectorRegistry()
    registry.register(GridSignalCollector(rig.ctl.state, rig.p.clock))
    site = rig.ctl.site
    rig.boxes["box-1"].set_feed_in(60)
    await rig.tick()
    assert sample(registry, "vpp_grid_signal_active", source="box-1", kind="feed_in_pct") == 1
    for pv in site.pv:
        assert sample(registry, "vpp_grid_signal_compliant", device=pv.id) == 1
    assert sample(registry, "vpp_grid_signal_not_compliant_devices") == 0
    assert sample(registry, "vpp_grid_signal_source_silent", source="box-1") == 0
    # Signals read again with no new poll, write or signal: the finding stands as it was.
    found = rig.ctl.state.grid_signal_compliance
    await rig.tick()
    assert rig.ctl.state.grid_signal_compliance is found
    # An inverter drops its limit behind the controller's back: the next poll shows it.
    tampered = site.pv[0].id
    rig.p.fleet.device(tampered).state.limit_enabled = False
    rig.p.fleet.step(1.0)
    await rig.ctl.run_job("poll")
    await rig.tick()
    assert sample(registry, "vpp_grid_signal_compliant", device=tampered) == 0
    assert sample(registry, "vpp_grid_signal_not_compliant_devices") == 1
    [lost] = rig.events("signal_compliance_lost")
    assert lost.device == tampered and "§9 EEG" in lost.message
    # The keep-alive writes the limit again: compliant at the next check.
    await rig.ctl.run_job("keepalive")
    await rig.tick()
    assert sample(registry, "vpp_grid_signal_compliant", device=tampered) == 1
    assert rig.events("signal_compliance_restored")
    # Conflicts are counted.
    rig.boxes["box-2"].set_feed_in(30)
    await rig.tick()
    assert sample(registry, "vpp_grid_signal_conflicts_active") == 1
    assert sample(registry, "vpp_grid_signal_conflicts_total") == 1


async def test_a_plan_that_cannot_keep_a_signal_reports_its_slack() -> None:
    """Zero export at noon with inverters that cannot be curtailed (minimum limit 100 %):
    the plan keeps the export at 0 W with the spill slack, and says so."""
    data = small_site().model_dump(mode="json")
    for d in data["devices"]:
        if d["kind"] == "pv":
            d["min_limit_pct"] = 100.0
    site = parse_site(data, "<slack>")
    async with plant(site, T0) as p:
        p.ctl.signal_watch = SignalWatch(site, [], T0)
        p.ctl.signal_watch.extra = [
            Signal("operator", SignalKind.ZERO_EXPORT, T0, T0 + timedelta(hours=4))
        ]
        await p.ctl.run_job("poll")
        await p.ctl.run_job("signals")
        assert await p.ctl.run_job("plan")
        plan = p.ctl.state.plan
        assert plan is not None and plan.info.status == "optimal"
        window = (plan.frame.index >= T0.replace(minute=15)) & (
            plan.frame.index < T0 + timedelta(hours=4)
        )
        assert (plan.frame.loc[window, "export_cap_w"] <= 1.0).all()
        assert (plan.frame.loc[window, "grid_export_w"] <= 1.0).all()
        assert plan.info.slacks.get("spilled_el_wh", 0.0) > 0.0
        [event] = [e for e in p.ctl.state.events if e.kind == "signal_plan_slack"]
        assert "spilled_el_wh" in event.message
