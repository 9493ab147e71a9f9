"""One writer per device: writes to the same device from several jobs at once do not
interleave on the device; the newest intent wins and the record is what was read back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from adapters.sim.battery import BatteryState
from vpp.control.safety import Setpoint
from vpp.core.site import DeviceKind
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
