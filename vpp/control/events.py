"""Events and setpoint records as the recorder stores them."""

from __future__ import annotations

from typing import Any

from vpp.control.state import Event, SetpointStatus

__all__ = ["Event", "setpoint_record"]


def setpoint_record(status: SetpointStatus) -> Any:
    """The recorder's row for one setpoint status."""
    from vpp.recorder import SetpointRecord

    return SetpointRecord(
        time=status.time,
        device_id=status.device_id,
        quantity=status.quantity,
        requested=status.requested_w,
        written=status.written_w,
        readback=status.read_back_w,
        ok=status.ok,
        message=status.message,
    )
