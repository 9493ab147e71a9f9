"""Whether the plant follows the active signals: per device, from what it read back; for the
site, from the grid meter.

Pure: a :class:`~vpp.signals.resolve.Resolved`, the devices' setpoint statuses and the
measured grid power in; a :class:`Compliance` out. A device is *compliant* when the setpoint
it read back lies within its signal bounds (with ``tol_w`` of slack for the registers'
resolution), *not compliant* when it lies outside or the resolver already found the signal
cannot be followed (a §9 stage below the inverter's minimum), and *unknown* when nothing
has been read back since (offline, dry run). The grid exchange is checked against the
signals' import and export caps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vpp.signals.resolve import Resolved

#: Slack [W] for register resolution when comparing a read-back setpoint with its bound.
TOL_W = 2.0
#: Slack [W] on the measured grid exchange: it moves with PV and load between two
#: corrections, and the alert on it waits for a breach that lasts.
GRID_TOL_W = 500.0


@dataclass(frozen=True, slots=True)
class Compliance:
    """Compliance with the active signals now."""

    #: "compliant", "not_compliant" or "unknown" per device that a signal bounds.
    devices: Mapping[str, str] = field(default_factory=dict)
    #: Why each non-compliant device is not.
    reasons: Mapping[str, str] = field(default_factory=dict)
    #: True when the measured grid exchange keeps the signals' caps (None: no cap or no
    #: measurement).
    grid: bool | None = None

    def count(self, status: str) -> int:
        return sum(1 for s in self.devices.values() if s == status)

    @property
    def compliant(self) -> bool:
        """No device and not the grid exchange is known to break a signal."""
        return self.count("not_compliant") == 0 and self.grid is not False


def held_w(site: Any, setpoints: Mapping[str, Any], snapshot: Any) -> dict[str, float]:
    """The setpoint each device holds [W, in its setpoint's sign]: what it read back after
    the last write, or what the last poll shows if that is newer (a PV limit as % of the
    rating, 100 % when disabled; a battery's or heat pump's active setpoint)."""
    out: dict[str, float] = {
        d: s.read_back_w for d, s in setpoints.items() if s.read_back_w is not None
    }
    if snapshot is None:
        return out
    for device_id, state in snapshot.devices.items():
        reading = state.reading
        status = setpoints.get(device_id)
        if reading is None or not state.health.online:
            continue
        if status is not None and status.time >= snapshot.time:
            continue
        value = _polled(site, device_id, reading)
        if value is not None:
            out[device_id] = value
    return out


def _polled(site: Any, device_id: str, reading: Any) -> float | None:
    if hasattr(reading, "limit_pct"):  # PV
        device = site.device(device_id)
        pct = 100.0 if reading.limit_pct is None else float(reading.limit_pct)
        return pct / 100.0 * float(device.rated_w)
    if hasattr(reading, "soc_pct"):  # battery
        return None if reading.setpoint_w is None else float(reading.setpoint_w)
    if hasattr(reading, "el_setpoint_w"):  # heat pump
        return None if reading.el_setpoint_w is None else float(reading.el_setpoint_w)
    return None


def check(
    resolved: Resolved | None,
    held: Mapping[str, float],
    grid_w: float | None,
    tol_w: float = TOL_W,
    grid_tol_w: float = GRID_TOL_W,
) -> Compliance:
    """Compliance of the setpoints the devices hold (:func:`held_w`) and of ``grid_w``
    [W, > 0 import]."""
    if resolved is None or not resolved.active:
        return Compliance()
    held_low = {text.split(":", 1)[0]: text for text in resolved.non_compliant}
    devices: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for device_id, bounds in resolved.bounds.items():
        value = held.get(device_id)
        if device_id in held_low:
            devices[device_id], reasons[device_id] = "not_compliant", held_low[device_id]
        elif value is None:
            devices[device_id] = "unknown"
        else:
            broken = [b for b in bounds if not b.lo - tol_w <= value <= b.hi + tol_w]
            if broken:
                devices[device_id] = "not_compliant"
                reasons[device_id] = f"{device_id}: holds {value:.0f} W against {broken[0].source}"
            else:
                devices[device_id] = "compliant"
    grid: bool | None = None
    if grid_w is not None and (
        resolved.import_cap_w is not None or resolved.export_cap_w is not None
    ):
        imp = resolved.import_cap_w
        exp = resolved.export_cap_w
        grid = (imp is None or grid_w <= imp + grid_tol_w) and (
            exp is None or -grid_w <= exp + grid_tol_w
        )
    return Compliance(devices, reasons, grid)
