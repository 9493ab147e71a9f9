"""A fleet served from several processes: devices split by gateway, every one answering."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.bridge import ModbusBridge
from adapters.poll import FleetPoller
from adapters.sim.sharded import ShardedFleet, shard_site
from adapters.sim.synthetic import synthetic_site
from adapters.snapshot import BatteryReading, PvReading
from tests.conftest import free_ports
from vpp.core.site import Site, parse_site


def _site(n_pv: int, n_bat: int, per_port: int) -> Site:
    """A synthetic site whose gateways sit on free ports (not necessarily consecutive)."""
    ports_needed = -(-(n_pv + n_bat) // per_port)
    ports = free_ports(ports_needed)
    site = synthetic_site(n_pv, n_bat, base_port=10_000, units_per_port=per_port)
    data: dict[str, Any] = site.model_dump(mode="json")
    for d in data["devices"]:
        d["modbus"]["port"] = ports[d["modbus"]["port"] - 10_000]
    return parse_site(data, "<sharded test>")


def test_shards_split_the_devices_by_gateway() -> None:
    site = _site(25, 25, per_port=10)  # 5 gateways
    parts = shard_site(site, 2)
    assert len(parts) == 2
    ids = [[d.id for d in p.devices] for p in parts]
    assert sorted(i for part in ids for i in part) == sorted(d.id for d in site.devices)
    ports = [{d.modbus.port for d in p.devices} for p in parts]
    assert not ports[0] & ports[1]  # a gateway is never split
    assert [len(p) for p in ports] == [3, 2]
    assert len(shard_site(site, 9)) == 5  # no empty shards
    with pytest.raises(ValueError, match="shards must be >= 1"):
        shard_site(site, 0)


def test_a_sharded_fleet_answers_for_every_device() -> None:
    site = _site(12, 12, per_port=8)  # 3 gateways over 2 processes

    async def poll() -> Any:
        async with ModbusBridge() as bridge:
            return await FleetPoller(site, bridge).poll()

    with ShardedFleet(site, 2, delay_s=0.001) as fleet:
        pids = fleet.pids
        snapshot = asyncio.run(poll())
    assert len(set(pids)) == 2 and None not in pids
    assert all(not p._process.is_alive() for p in fleet._processes)
    states = [snapshot.devices[d.id] for d in site.devices]
    assert all(s.health.online for s in states), [s.health.last_error for s in states]
    for d in site.pv:
        reading = snapshot.devices[d.id].reading
        assert isinstance(reading, PvReading) and reading.rated_w == d.rated_w
    for b in site.batteries:
        stored = snapshot.devices[b.id].reading
        assert isinstance(stored, BatteryReading) and stored.soc_pct is not None
        assert 0.0 <= stored.soc_pct <= 100.0
