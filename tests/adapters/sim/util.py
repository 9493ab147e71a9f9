"""Helpers for the simulator tests: small sites built in code and a plain pymodbus reader."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from adapters.sunspec.codec import encode_value, unscale
from adapters.sunspec.decode import point_address
from adapters.sunspec.discovery import RegisterReadError, ScanResult, scan
from adapters.sunspec.models import PointDef, load_model
from tests.conftest import LOOPBACK
from vpp.core.site import Site, parse_site

#: Midsummer noon in Leipzig (10:00 UTC is 12:00 CEST).
NOON = datetime(2024, 6, 21, 10, 0, tzinfo=UTC)


def pv(dev_id: str, port: int, unit: int, model: int = 103, **extra: Any) -> dict[str, Any]:
    return {"id": dev_id, "kind": "pv", "rated_w": 10_000, "peak_wp": 11_000,
            "modbus": {"port": port, "unit": unit}, "sim": {"sunspec_model": model},
            **extra}  # fmt: skip


def battery(dev_id: str, port: int, unit: int, model: int = 124, **extra: Any) -> dict[str, Any]:
    return {"id": dev_id, "kind": "battery", "capacity_wh": 10_000, "max_charge_w": 5_000,
            "max_discharge_w": 5_000, "soc_initial_pct": 50, "charge_efficiency": 0.95,
            "discharge_efficiency": 0.9, "control": str(model),
            "modbus": {"port": port, "unit": unit}, "sim": {"sunspec_model": model},
            **extra}  # fmt: skip


def meter(dev_id: str, port: int, unit: int) -> dict[str, Any]:
    return {"id": dev_id, "kind": "meter", "modbus": {"port": port, "unit": unit},
            "sim": {"sunspec_model": 203}}  # fmt: skip


def heat_pump(port: int, unit: int = 1) -> dict[str, Any]:
    return {"id": "hp", "kind": "heat_pump", "max_el_w": 100_000, "min_part_load_pct": 20,
            "carnot_efficiency": 0.5, "source_approach_k": 5, "modbus": {"port": port,
            "unit": unit}}  # fmt: skip


def datacentre(port: int, unit: int = 1) -> dict[str, Any]:
    return {"id": "dc", "kind": "datacentre", "it_power_w": 200_000,
            "heat_recovery_ratio": 0.9, "waste_heat_temp_c": 35.0,
            "dry_cooler_el_per_th": 0.05, "modbus": {"port": port, "unit": unit}}  # fmt: skip


def make_site(devices: list[dict[str, Any]], *, meter_id: str | None = None,
              base_load_peak_w: float = 0.0) -> Site:  # fmt: skip
    """A Site with ``devices`` in Leipzig; the grid limits are generous."""
    grid = {"import_limit_w": 500_000, "export_limit_w": 500_000, "meter": meter_id,
            "base_load_peak_w": base_load_peak_w}  # fmt: skip
    return parse_site({"site": {"name": "test"}, "grid": grid, "devices": devices})


class Reader:
    """A ``RegisterReader`` over a plain pymodbus client, for ``adapters.sunspec.discovery``."""

    def __init__(self, client: AsyncModbusTcpClient, unit: int) -> None:
        self.client = client
        self.unit = unit

    async def read(self, address: int, count: int) -> list[int]:
        reply = await self.client.read_holding_registers(address, count=count, device_id=self.unit)
        if reply.isError():
            raise RegisterReadError(f"exception {reply.exception_code} at {address}")
        return list(reply.registers)


def client(port: int, timeout_s: float = 2.0, retries: int = 0) -> AsyncModbusTcpClient:
    """A plain pymodbus client for a loopback port (connect it with ``await c.connect()``)."""
    # No reconnect: a test that takes a server away must not leave a reconnect task behind.
    return AsyncModbusTcpClient(
        LOOPBACK, port=port, timeout=timeout_s, retries=retries, reconnect_delay=0
    )


async def scan_unit(port: int, unit: int, base: int | None = None) -> ScanResult:
    """Discover and decode one simulated device with the project's SunSpec scanner."""
    c = client(port)
    await c.connect()
    try:
        return await scan(Reader(c, unit), base)
    finally:
        c.close()


def point(result: ScanResult, model_id: int, name: str) -> tuple[int, PointDef]:
    """Absolute address and definition of a top-level point of a scanned device."""
    model = result.model(model_id)
    return point_address(load_model(model_id), model.address, name)


def raw(result: ScanResult, model_id: int, name: str, value: float) -> list[int]:
    """Registers that write the engineering ``value`` to a point, with the device's own SF."""
    _address, pdef = point(result, model_id, name)
    sf = pdef.sf
    if isinstance(sf, str):
        sf = result.model(model_id).values[sf]
    return encode_value(pdef.type, unscale(value, sf), pdef.size)


async def write_point(
    c: AsyncModbusTcpClient, unit: int, result: ScanResult, model_id: int, name: str, value: float
) -> Any:
    """Write one point with function code 16; returns the pymodbus reply."""
    address, _pdef = point(result, model_id, name)
    return await c.write_registers(address, raw(result, model_id, name, value), device_id=unit)
