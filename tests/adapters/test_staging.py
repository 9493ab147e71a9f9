"""Staging a 124 battery's next setpoint: the rates written while it is in its own mode (where
they hold nothing), then at the setpoint the mode alone; never on a battery under control."""

from __future__ import annotations

import pytest

from adapters.controls import ControlRefused
from adapters.snapshot import BatteryReading
from tests.adapters.test_controls import REVERT_S, address, controlled, int16, written


async def test_staged_rates_hold_nothing_and_the_setpoint_is_then_the_mode_alone() -> None:
    async with controlled() as (fleet, poller, controls):
        fake = fleet.units["bat-1"]
        a_rates = address(poller, "bat-1", 124, "OutWRte")
        a_mode = address(poller, "bat-1", 124, "StorCtl_Mod")
        before = fake.requests
        staged = await controls.stage("bat-1", 2000.0)
        assert fake.requests - before == 2  # the rates, then their read-back
        assert written(fake) == [(16, a_rates, [40, int16(-40), 0xFFFF, REVERT_S])]
        idle = (await poller.poll_device("bat-1")).reading
        # Still in its own mode: the rates hold it at no setpoint.
        assert isinstance(idle, BatteryReading) and idle.setpoint_w is None
        before = fake.requests
        result = await controls.set_battery_power("bat-1", 2000.0)
        assert fake.requests - before == 2  # the mode and the read-back
        assert written(fake)[1:] == [(16, a_mode, [3])]
        held = (await poller.poll_device("bat-1")).reading
    assert staged is not None and staged.ok and staged.read_back is None
    assert staged.written == 2000.0 and "staged in the device's own mode" in staged.message
    assert result.ok and (result.written, result.read_back) == (2000.0, 2000.0)
    assert isinstance(held, BatteryReading) and held.setpoint_w == 2000.0


async def test_a_setpoint_other_than_the_staged_one_writes_rates_and_mode() -> None:
    async with controlled() as (fleet, poller, controls):
        fake = fleet.units["bat-1"]
        await controls.stage("bat-1", 2000.0)
        result = await controls.set_battery_power("bat-1", -1000.0)
        a_rates = address(poller, "bat-1", 124, "OutWRte")
        a_mode = address(poller, "bat-1", 124, "StorCtl_Mod")
        assert written(fake)[1:] == [
            (16, a_rates, [int16(-20), 20, 0xFFFF, REVERT_S]),
            (16, a_mode, [3]),
        ]
    assert result.ok and result.read_back == -1000.0


async def test_a_battery_under_control_is_never_staged() -> None:
    """Its rates act: staging them would change what it does now. Nothing is written."""
    async with controlled() as (fleet, _, controls):
        assert controls.can_stage("bat-1")
        await controls.set_battery_power("bat-1", 1500.0)
        assert not controls.can_stage("bat-1")  # as last read: under control
        fake = fleet.units["bat-1"]
        before, writes = fake.requests, len(fake.writes)
        assert await controls.stage("bat-1", -2000.0) is None
        assert (fake.requests, len(fake.writes)) == (before, writes)


async def test_one_bit_of_the_mode_is_under_control_too() -> None:
    """A window bounded on one side (the charge bit alone) makes ``InWRte`` act."""
    async with controlled() as (fleet, poller, controls):
        fake = fleet.units["bat-1"]
        fake.set(address(poller, "bat-1", 124, "StorCtl_Mod"), [1])
        await poller.poll_device("bat-1")
        assert await controls.stage("bat-1", -2000.0) is None
        assert written(fake) == []


async def test_rates_held_already_are_not_staged_again() -> None:
    async with controlled() as (fleet, _, controls):
        fake = fleet.units["bat-1"]
        assert await controls.stage("bat-1", 500.0) is not None
        before = fake.requests
        assert await controls.stage("bat-1", 500.0) is None
        assert fake.requests == before


async def test_staging_is_checked_as_a_write_is() -> None:
    async with controlled() as (fleet, _, controls):
        with pytest.raises(ControlRefused, match="above the maximum discharge power"):
            await controls.stage("bat-1", 50_000.0)
        with pytest.raises(ControlRefused, match="not a finite number"):
            await controls.stage("bat-1", float("nan"))
        assert written(fleet.units["bat-1"]) == []


async def test_only_a_124_battery_stages() -> None:
    async with controlled() as (fleet, _, controls):
        assert [d for d in ("pv-1", "pv-2", "bat-1", "bat-2") if controls.can_stage(d)] == ["bat-1"]
        assert await controls.stage("bat-2", 1000.0) is None
        assert written(fleet.units["bat-2"]) == []


async def test_staged_battery_with_read_write_takes_one_request_at_the_setpoint() -> None:
    """With function code 23 the mode travels with the read-back: a battery taken out of
    its own mode at the quarter hour is one request, as one under control is."""
    async with controlled(read_write=True) as (fleet, poller, controls):
        fake = fleet.units["bat-1"]
        staged = await controls.stage("bat-1", -1500.0)
        before = fake.requests
        result = await controls.set_battery_power("bat-1", -1500.0)
        assert fake.requests - before == 1
        a_mode = address(poller, "bat-1", 124, "StorCtl_Mod")
        assert fake.writes[-1] == (23, a_mode, [3])
    assert staged is not None and staged.ok
    assert result.ok and result.read_back == -1500.0


async def test_a_staged_rate_the_device_does_not_keep_is_reported() -> None:
    async with controlled() as (fleet, _, controls):
        fleet.units["bat-1"].ignore_writes = True
        staged = await controls.stage("bat-1", 2000.0)
    assert staged is not None and not staged.ok
    assert "not the rates staged" in staged.message


async def test_rates_whose_scale_factor_is_unreadable_are_never_taken_as_held() -> None:
    """A setpoint is the mode alone only where the rates read back as the ones it needs:
    with ``InOutWRte_SF`` not implemented the rates decode to nothing, and a setpoint writes
    them again before the mode."""
    async with controlled() as (fleet, poller, controls):
        fake = fleet.units["bat-1"]
        await controls.stage("bat-1", 1000.0)
        fake.set(address(poller, "bat-1", 124, "InOutWRte_SF"), [0x8000])
        await poller.poll_device("bat-1")
        writes = len(fake.writes)
        await controls.set_battery_power("bat-1", 1000.0)
        a_rates = address(poller, "bat-1", 124, "OutWRte")
        a_mode = address(poller, "bat-1", 124, "StorCtl_Mod")
        assert [(code, a) for code, a, _ in fake.writes[writes:]] == [(16, a_rates), (16, a_mode)]
