"""The demo site has the grid operator's control box, and the simulated fleet serves it."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.bridge import ModbusBridge
from adapters.controlbox import ControlBoxReader
from adapters.sim.fleet import SimFleet
from tests.vpp.web.live import demo_site
from vpp.core.clock import ManualClock
from vpp.signals.sources import decode_box

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


async def test_the_demo_fleet_serves_its_control_box() -> None:
    site = demo_site(n_pv=1, n_battery=1)
    [box_cfg] = site.signals.sources
    assert box_cfg.id == "box-1"
    clock = ManualClock(T0)
    async with (
        SimFleet(site, clock=clock, step_interval_s=None, serve_boxes=True) as fleet,
        ModbusBridge() as bridge,
    ):
        reader = ControlBoxReader(bridge, box_cfg, site.poll)
        first = await reader.read()
        assert first.contacts["feed_in_100"] and not first.contacts["dim_14a"]
        assert decode_box(box_cfg, first) == ()  # 100 %: no limit
        clock.advance(3.0)
        fleet.boxes["box-1"].set_feed_in(60)
        second = await reader.read()
        assert second.heartbeat != first.heartbeat
        [spec] = decode_box(box_cfg, second)
        assert spec.feed_in_pct == 60.0
