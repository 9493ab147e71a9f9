"""One writer per device: writes to the same device from several jobs at once do not
interleave on the device; the newest intent wins and the record is what was read back."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest

from adapters.bridge import ModbusBridge
from adapters.sim.battery import BatteryState
from adapters.sim.synthetic import synthetic_site
from tests.adapters.fleet import pv_models
from tests.adapters.servers import FakeUnit, UnitServer, sunspec_image
from tests.conftest import free_ports
from vpp.control.plant import ModbusPlant
from vpp.control.safety import Setpoint
from vpp.core.clock import ManualClock
from vpp.core.site import DeviceKind, parse_site
from vpp.testing.harness import plant, small_site

NOON = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


async def test_concurrent_writes_to_one_device_keep_the_newest_and_read_it_back() -> None:
    site = small_site()
    async with plant(site, NOON) as p:
        assert await p.ctl.run_job("poll")
        bat = site.batteries[0]
        values = [-2000.0, 1500.0, -500.0, 800.0, 1200.0]
        # Dispatch, correction, keep-alive and an operator action at the same moment.
        await asyncio.gather(
            *(
                p.ctl.apply([Setpoint(bat.id, DeviceKind.BATTERY, v, v)], source)
                for v, source in zip(
                    values,
                    ("dispatch", "correct", "keepalive", "operator", "dispatch"),
                    strict=True,
                )
            )
        )
        st = p.ctl.state
        assert not st.readback_mismatches_total, [e.message for e in st.events]
        record = st.setpoints[bat.id]
        assert record.ok and record.requested_w == values[-1]
        assert record.read_back_w is not None and abs(record.read_back_w - values[-1]) < 50.0
        sim = p.fleet.device(bat.id).state
        assert isinstance(sim, BatteryState)
        assert abs(sim.setpoint_w - values[-1]) < 50.0  # the device holds the newest intent


async def test_a_batch_is_written_round_robin_over_gateways_within_the_concurrency() -> None:
    """Setpoints given in config order (all of the first gateway, then the second) are
    taken round-robin over the gateways: with 2 connections per gateway and 4 devices in
    flight both gateways are written side by side, never more than 4 requests at once,
    and each device gets its one write and one read-back, confirmed, in the given order."""
    ports = free_ports(2)
    units = {p: [FakeUnit(u, sunspec_image(pv_models())) for u in range(1, 7)] for p in ports}
    devices = [
        {"id": f"pv-{p}-{u.unit}", "kind": "pv", "rated_w": 5000,
         "modbus": {"port": p, "unit": u.unit, "timeout_s": 2.0}}
        for p in ports
        for u in units[p]
    ]  # fmt: skip
    site = parse_site(
        {
            "site": {"name": "gw"},
            "run": {"dispatch_concurrency": 4},
            "grid": {"import_limit_w": 1, "export_limit_w": 1},
            "devices": devices,
        }
    )
    async with AsyncExitStack() as stack:
        for port in ports:
            await stack.enter_async_context(UnitServer(port, units[port]))
        bridge = await stack.enter_async_context(ModbusBridge(connections_per_endpoint=2))
        plant = ModbusPlant.for_site(site, bridge, ManualClock(NOON))
        await plant.read()  # discovery and the control models, as before a dispatch
        fakes = [f for p in ports for f in units[p]]
        before = [f.requests for f in fakes]
        for fake in fakes:
            fake.delay_s = 0.3  # long beside a busy machine's scheduling delays
        setpoints = [Setpoint(str(d["id"]), DeviceKind.PV, 2500.0, 2500.0) for d in devices]
        results = await plant.write(setpoints)
    assert [r.device_id for r in results] == [sp.device_id for sp in setpoints]
    assert all(r.ok and r.written == 2500.0 and r.read_back == 2500.0 for r in results)
    assert [f.requests - b for f, b in zip(fakes, before, strict=True)] == [2] * len(fakes)
    # What was in flight, on the servers' clock: never more than 4 requests in all, and
    # both gateways at work from the first round on (in config order the second gateway's
    # first request would wait until devices of the first had finished).
    spans = {p: [s for u in units[p] for s in u.delayed] for p in ports}

    def in_flight(port: int, at: float) -> int:
        return sum(start <= at < end for start, end in spans[port])

    starts = [start for s in spans.values() for start, _ in s]
    assert max(sum(in_flight(p, at) for p in ports) for at in starts) <= 4
    first_end = min(end for s in spans.values() for _, end in s)
    assert all(min(start for start, _ in spans[p]) < first_end for p in ports)


async def test_a_read_write_device_takes_a_setpoint_and_its_read_back_in_one_request() -> None:
    """Devices that serve function code 23 (the synthetic fleet): a PV limit is one request,
    a battery one in either direction (two when it is taken out of its own mode, the
    registers between rates and mode being read-only); every write is read back, compared
    and confirmed, and the simulated devices hold what was written."""
    (port,) = free_ports(1)
    site = synthetic_site(4, 4, port)
    async with plant(site, NOON) as p:
        assert await p.ctl.run_job("poll")
        pvs, bats = site.pv, site.batteries
        for round_, bat_w in enumerate((1000.0, 1500.0, -800.0)):
            batch = [Setpoint(d.id, DeviceKind.PV, 0.5 * d.rated_w, 0.5 * d.rated_w) for d in pvs]
            batch += [Setpoint(d.id, DeviceKind.BATTERY, bat_w, bat_w) for d in bats]
            before = {d.id: p.fleet.device(d.id).requests for d in site.devices}
            statuses = await p.ctl.apply(batch, "dispatch")
            used = {d.id: p.fleet.device(d.id).requests - before[d.id] for d in site.devices}
            assert [s.device_id for s in statuses] == [sp.device_id for sp in batch]
            assert all(s.ok for s in statuses), [s.message for s in statuses]
            assert all(s.read_back_w == pytest.approx(s.written_w, abs=50.0) for s in statuses)
            assert {used[d.id] for d in pvs} == {1}
            # Only the first round also sets the mode (two requests): not the change of
            # direction in the third.
            assert {used[d.id] for d in bats} == ({2} if round_ == 0 else {1})
            for bat in bats:
                state = p.fleet.device(bat.id).state
                assert isinstance(state, BatteryState)
                assert state.setpoint_w == pytest.approx(bat_w, abs=50.0)
            for inv in pvs:
                assert p.fleet.device(inv.id).state.limit_pct == pytest.approx(50.0, abs=0.1)
        assert not p.ctl.state.readback_mismatches_total
