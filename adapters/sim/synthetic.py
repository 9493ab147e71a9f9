"""Synthetic sites of many devices, for benchmarks and load tests.

Every device presents the common, inverter or storage, and nameplate models: PV inverters
models 1, 103 (every fourth 113), 120 and 123; batteries 1, 103, 120 and 124. Ratings vary
deterministically so devices differ, and units fill each port before the next one is used.
Their endpoints say ``read_write`` (the simulator serves function code 23), so a setpoint's
read-back travels with its last write.
"""

from __future__ import annotations

from typing import Any

from vpp.core.site import Site, parse_site

#: Highest Modbus unit id usable on a port.
MAX_UNIT = 247


def _endpoint(index: int, base_port: int, units_per_port: int) -> dict[str, Any]:
    port, unit = divmod(index, units_per_port)
    return {"port": base_port + port, "unit": unit + 1, "read_write": True}


def _pv(i: int, modbus: dict[str, Any]) -> dict[str, Any]:
    rated_w = 3000 + (i * 797) % 22000  # 3..25 kW
    return {
        "id": f"pv-{i + 1:05d}",
        "kind": "pv",
        "rated_w": rated_w,
        "peak_wp": round(rated_w * 1.1),
        "azimuth_deg": (90, 135, 180, 225, 270)[i % 5],
        "feeder": f"F{i % 3 + 1}",
        "modbus": modbus,
        "sim": {"sunspec_model": 113 if i % 4 == 3 else 103},
    }


def _battery(i: int, modbus: dict[str, Any]) -> dict[str, Any]:
    capacity_wh = (5000, 7500, 10000, 12500, 15000, 20000)[i % 6]
    return {
        "id": f"bat-{i + 1:05d}",
        "kind": "battery",
        "capacity_wh": capacity_wh,
        "max_charge_w": capacity_wh / 2,
        "max_discharge_w": capacity_wh / 2,
        "soc_initial_pct": 30 + (i * 7) % 50,
        "control": "124",
        "feeder": f"F{i % 3 + 1}",
        "modbus": modbus,
        "sim": {"sunspec_model": 124},
    }


def synthetic_site(n_pv: int, n_batteries: int, base_port: int, units_per_port: int = 100) -> Site:
    """A Site of ``n_pv`` PV inverters then ``n_batteries`` batteries on loopback.

    Devices take unit ids 1..``units_per_port`` on ``base_port``, then on the next port, and so
    on: ceil((n_pv + n_batteries) / units_per_port) ports in all.
    """
    if not 1 <= units_per_port <= MAX_UNIT:
        raise ValueError(f"units_per_port must be 1..{MAX_UNIT}, got {units_per_port}")
    if n_pv < 0 or n_batteries < 0:
        raise ValueError("device counts must be >= 0")
    devices = [_pv(i, _endpoint(i, base_port, units_per_port)) for i in range(n_pv)]
    devices += [
        _battery(i, _endpoint(n_pv + i, base_port, units_per_port)) for i in range(n_batteries)
    ]
    last_port = base_port + max(0, (len(devices) - 1) // units_per_port)
    if last_port > 65535:
        raise ValueError(f"{len(devices)} devices from port {base_port} need ports past 65535")
    limit_w = 30_000.0 * max(1, len(devices))
    data = {
        "site": {"name": f"synthetic {n_pv} PV + {n_batteries} batteries"},
        "grid": {"import_limit_w": limit_w, "export_limit_w": limit_w},
        "devices": devices,
    }
    return parse_site(data, "<synthetic>")
