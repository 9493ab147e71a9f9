"""Fleet poll of a small site: values, faults isolated per device, breakers, restarts."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from adapters.bridge import ModbusBridge
from adapters.poll import FleetPoller
from adapters.snapshot import (
    BatteryReading,
    BreakerState,
    DatacentreReading,
    HeatPumpReading,
    MeterReading,
    PvReading,
)
from tests.adapters.fleet import DATACENTRE, HEAT_PUMP, meter_models, serve_fleet
from tests.adapters.servers import FakeUnit, UnitServer, sunspec_image
from tests.conftest import free_ports
from vpp.core.clock import ManualClock
from vpp.core.site import parse_site

T0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


class Monotonic:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_whole_fleet_polled_into_one_snapshot_with_what_the_devices_hold() -> None:
    async with serve_fleet() as fleet, ModbusBridge() as bridge:
        clock = ManualClock(T0)
        snap = await FleetPoller(fleet.site, bridge, clock).poll()
    assert snap.time == T0
    assert sorted(snap.devices) == ["bat-1", "bat-2", "dc", "hp", "meter", "pv-1", "pv-2"]
    assert all(d.health.online and d.read_at == T0 for d in snap), [d.health for d in snap]
    r = {d.id: d.reading for d in snap}
    assert r["pv-1"] == PvReading(3000.0, 123456.0, 3100.0, "MPPT", 5000.0, None)
    assert r["pv-2"] == PvReading(7000.5, 99000.0, 7100.5, "THROTTLED", 10000.0, 60.0)
    assert r["bat-1"] == BatteryReading(55.0, -1500.0, 10000.0, 5000.0, 5000.0, "CHARGING")
    assert r["bat-2"] == BatteryReading(80.0, 2500.0, 20000.0, 10000.0, 10000.0, "DISCHARGING")
    assert r["meter"] == MeterReading(12000.0, 5_000_000.0, 1_000_000.0)
    hp = r["hp"]
    assert isinstance(hp, HeatPumpReading) and hp.running is True
    assert hp.el_power_w == HEAT_PUMP["el_power_w"] and abs(hp.supply_temp_c - 70.1) < 1e-9  # type: ignore[operator]
    assert r["dc"] == DatacentreReading(**DATACENTRE)
    assert snap.of_kind("battery")[0].kind == "battery"
    assert all(d.health.latency_s is not None and d.health.latency_s < 1 for d in snap)


async def test_faults_fail_only_their_device_and_keep_its_last_reading() -> None:
    async with serve_fleet() as fleet, ModbusBridge() as bridge:
        clock = ManualClock(T0)
        poller = FleetPoller(fleet.site, bridge, clock)
        first = await poller.poll()
        clock.advance(10)
        fleet.units["pv-1"].fault = "silent"  # timeout 0.5 s in the site
        fleet.units["bat-1"].fault = "error"
        await fleet.servers["C"].stop()  # meter, heat pump and data centre offline
        t0 = time.monotonic()
        snap = await poller.poll()
        elapsed = time.monotonic() - t0
    assert elapsed < 0.5 + 0.4, "one silent device may cost its own timeout, not more"
    ok = {d.id for d in snap.online()}
    assert ok == {"pv-2", "bat-2"}
    for device_id in ("pv-2", "bat-2"):
        assert snap.devices[device_id].read_at == T0.replace(second=10)
        assert (snap.devices[device_id].health.latency_s or 1) < 0.3
    errors = {d.id: d.health.last_error or "" for d in snap.offline()}
    assert "pv-1: " in errors["pv-1"] and "no answer within 0.5 s" in errors["pv-1"]
    assert "bat-1: " in errors["bat-1"] and "0x04 DEVICE_FAILURE" in errors["bat-1"]
    for device_id in ("meter", "hp", "dc"):
        assert errors[device_id].startswith(f"{device_id}: cannot connect")
    for d in snap.offline():
        assert d.reading == first.devices[d.id].reading  # last good reading kept...
        assert d.read_at == T0  # ...with its time
        assert d.health.consecutive_failures == 1 and d.health.error_count == 1
        assert d.health.last_success == T0 and d.health.last_attempt == T0.replace(second=10)


async def test_breaker_opens_skips_quickly_half_opens_and_closes() -> None:
    async with serve_fleet() as fleet:  # site: breaker_failures 2, breaker_reset_s 30
        mono = Monotonic()
        async with ModbusBridge(clock=mono) as bridge:
            poller = FleetPoller(fleet.site, bridge)
            pv = fleet.units["pv-1"]
            await poller.poll()
            pv.fault = "silent"
            for _ in range(2):
                state = (await poller.poll()).devices["pv-1"]
            assert state.health.breaker is BreakerState.OPEN
            assert state.health.consecutive_failures == 2

            requests = pv.requests
            t0 = time.monotonic()
            state = (await poller.poll()).devices["pv-1"]
            assert time.monotonic() - t0 < 0.2  # skipped, not waited for
            assert pv.requests == requests  # no I/O at all
            assert state.health.breaker is BreakerState.OPEN
            assert "circuit breaker open" in (state.health.last_error or "")
            assert state.health.consecutive_failures == 2  # a skip is no new failure

            mono.t += 30  # reset time: one trial, which fails and reopens
            state = (await poller.poll()).devices["pv-1"]
            assert state.health.breaker is BreakerState.OPEN
            assert pv.requests > requests and state.health.consecutive_failures == 3

            pv.fault = "none"
            mono.t += 30
            state = (await poller.poll()).devices["pv-1"]
            assert state.health.breaker is BreakerState.CLOSED and state.health.online
            assert state.health.error_count == 3


async def test_a_slow_device_times_out_at_its_deadline_and_its_breaker_opens() -> None:
    """A device that answers, but after its timeout, fails each poll with a timeout (its
    late answers are not taken), counts for its breaker until it opens and is then skipped;
    the rest of the fleet is read as usual."""
    async with serve_fleet() as fleet:  # site: timeout 0.5 s, breaker_failures 2
        mono = Monotonic()
        async with ModbusBridge(clock=mono) as bridge:
            poller = FleetPoller(fleet.site, bridge)
            await poller.poll()
            pv = fleet.units["pv-1"]
            pv.delay_s = 2.0
            for failures in (1, 2):
                snap = await poller.poll()
                state = snap.devices["pv-1"]
                assert "no answer within 0.5 s" in (state.health.last_error or "")
                assert state.health.consecutive_failures == failures
                assert {d.id for d in snap.offline()} == {"pv-1"}
            assert state.health.breaker is BreakerState.OPEN
            requests = pv.requests
            state = (await poller.poll()).devices["pv-1"]
            assert pv.requests == requests and "circuit breaker open" in (
                state.health.last_error or ""
            )
            pv.delay_s = 0.0
            mono.t += 30
            state = (await poller.poll()).devices["pv-1"]
            assert state.health.online and state.health.breaker is BreakerState.CLOSED
            assert state.reading == PvReading(3000.0, 123456.0, 3100.0, "MPPT", 5000.0, None)


async def test_server_restarted_mid_poll_reconnects_on_the_next_poll() -> None:
    async with serve_fleet() as fleet, ModbusBridge() as bridge:
        poller = FleetPoller(fleet.site, bridge)
        await poller.poll()
        for unit in fleet.units.values():
            unit.delay_s = 0.2
        polling = asyncio.ensure_future(poller.poll())
        await asyncio.sleep(0.1)
        await fleet.servers["A"].stop()  # both PV inverters, while their requests are out
        await fleet.servers["A"].start()
        snap = await polling
        assert not snap.devices["pv-1"].health.online
        assert "pv-1: " in (snap.devices["pv-1"].health.last_error or "")
        for unit in fleet.units.values():
            unit.delay_s = 0.0
        snap = await poller.poll()
    assert all(d.health.online for d in snap), [d.health.last_error for d in snap]


async def test_repeated_polls_do_not_grow_memory() -> None:
    """Per poll nothing is kept but the latest state: 90 more polls, (almost) no more bytes."""
    async with serve_fleet() as fleet, ModbusBridge() as bridge:
        poller = FleetPoller(fleet.site, bridge)
        fleet.units["bat-1"].fault = "error"  # a failing device must not accumulate either
        for _ in range(10):  # warm caches and connection pools
            await poller.poll()
        tracemalloc.start()
        try:
            for _ in range(30):  # objects that live across one poll reach their steady state
                await poller.poll()
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(90):
                await poller.poll()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert bridge.open_connections <= 3 * bridge.connections_per_endpoint
    assert grown < 16_000, f"{grown} bytes more after 90 polls"


async def test_devices_of_several_gateways_are_polled_side_by_side() -> None:
    """Workers go round-robin over gateways, not through the config in order: with 2
    connections per gateway and 4 devices in flight, both gateways work all the time."""
    ports = free_ports(2)
    units = {p: [FakeUnit(u, sunspec_image(meter_models())) for u in range(1, 7)] for p in ports}
    devices = [
        {
            "id": f"m-{p}-{u.unit}",
            "kind": "meter",
            "modbus": {"port": p, "unit": u.unit, "timeout_s": 2.0},
        }
        for p in ports
        for u in units[p]
    ]
    site = parse_site(
        {
            "site": {"name": "gw"},
            "poll": {"max_concurrency": 4},
            "grid": {"import_limit_w": 1, "export_limit_w": 1},
            "devices": devices,
        }
    )
    async with AsyncExitStack() as stack:
        for port in ports:
            await stack.enter_async_context(UnitServer(port, units[port]))
        bridge = await stack.enter_async_context(ModbusBridge(connections_per_endpoint=2))
        poller = FleetPoller(site, bridge)
        await poller.poll()  # discovery
        for fake in (f for p in ports for f in units[p]):
            fake.delay_s = 0.3  # long beside a busy machine's scheduling delays
        snap = await poller.poll()
    assert len(snap.online()) == 12
    # What was in flight, counted at every request start (the server's own clock): never more
    # than 4 in all, and at the busiest moment both gateways at their 2 connections (in config
    # order the first gateway's 6 devices would be read before the second's).
    spans = {p: [s for u in units[p] for s in u.delayed] for p in ports}
    assert all(len(s) == 6 for s in spans.values())

    def in_flight(port: int, at: float) -> int:
        return sum(start <= at < end for start, end in spans[port])

    starts = [start for s in spans.values() for start, _ in s]
    counts = [tuple(in_flight(p, at) for p in ports) for at in starts]
    assert max(sum(c) for c in counts) == 4
    assert (2, 2) in counts
