"""An independent SunSpec implementation agrees with the simulator and with our decoder.

pysunspec2's own Modbus TCP client scans each kind of simulated SunSpec device and must read
exactly the models, points and values that ``adapters.sunspec.discovery.scan`` decodes from
the same registers. pysunspec2's client is blocking: it runs in a worker thread while the
servers run in the event loop.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sunspec2.modbus.client as sunspec_client

from adapters.sim.fleet import SimFleet
from adapters.sunspec.decode import DecodedModel
from tests.adapters.sim.util import NOON, battery, make_site, meter, pv, scan_unit
from tests.conftest import LOOPBACK, free_ports
from vpp.core.clock import ManualClock

Points = dict[str, Any]
#: (unit, what it is, the models it must present)
UNITS = [
    (1, "PV 103 with two MPPT inputs", [1, 103, 120, 123, 160]),
    (2, "PV 113", [1, 113, 120, 123]),
    (3, "battery 124", [1, 103, 120, 124]),
    (4, "battery 802", [1, 701, 702, 704, 802]),
    (5, "meter 203", [1, 203]),
]


def pysunspec2_scan(port: int, unit: int) -> dict[int, tuple[Points, dict[str, list[Points]]]]:
    """Models of one device as pysunspec2 reads them: points and group instances by name."""
    device = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=unit, ipaddr=LOOPBACK, ipport=port, timeout=2
    )
    try:
        device.scan()
        result = {}
        for key, models in device.models.items():
            if isinstance(key, int):
                model = models[0]
                groups = {
                    name: [_points(g) for g in (group if isinstance(group, list) else [group])]
                    for name, group in model.groups.items()
                }
                result[key] = (_points(model), groups)
        return result
    finally:
        device.disconnect()


def _points(group: Any) -> Points:
    # Pad carries no information (our decoder reports None, pysunspec2 the raw word).
    return {n: p.cvalue for n, p in group.points.items() if p.pdef.get("type") != "pad"}


def assert_same(theirs: Points, ours: Points, where: str) -> None:
    for name, value in theirs.items():
        mine = ours[name]
        if isinstance(value, float) and isinstance(mine, float):
            assert math.isclose(value, mine, rel_tol=1e-9), f"{where}.{name}: {value} != {mine}"
        else:
            assert value == mine, f"{where}.{name}: pysunspec2 {value!r}, ours {mine!r}"


def compare(theirs: tuple[Points, dict[str, list[Points]]], ours: DecodedModel) -> None:
    points, groups = theirs
    assert_same(points, ours.values, f"model {ours.id}")
    assert set(groups) == set(ours.groups)
    for name, instances in groups.items():
        assert len(instances) == len(ours.groups[name])
        for i, (their, our) in enumerate(zip(instances, ours.groups[name], strict=True)):
            assert_same(their, our.values, f"model {ours.id} {name}[{i + 1}]")


@pytest.fixture
def site_port() -> int:
    return free_ports(1)[0]


async def test_pysunspec2_reads_what_our_decoder_reads(site_port: int) -> None:
    port = site_port
    site = make_site(
        [pv("pv-103", port, 1, rated_w=20_000, peak_wp=22_000),
         pv("pv-113", port, 2, 113, rated_w=6_000, peak_wp=6_500),
         battery("bat-124", port, 3, 124), battery("bat-802", port, 4, 802),
         meter("grid", port, 5)],
        meter_id="grid", base_load_peak_w=20_000,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    # The clock stands still between the two scans, so both see the same registers.
    async with SimFleet(site, ManualClock(NOON), step_interval_s=None) as fleet:
        fleet.step(120)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pysunspec2") as pool:
            for unit, what, model_ids in UNITS:
                theirs = await loop.run_in_executor(pool, pysunspec2_scan, port, unit)
                ours = await scan_unit(port, unit)
                assert list(theirs) == model_ids, what
                assert [m.id for m in ours.models] == model_ids, what
                for model in ours.models:
                    assert model.errors == [], f"{what}: {model.errors}"
                    compare(theirs[model.id], model)
    assert fleet.device("pv-103").state.pv_w > 0
