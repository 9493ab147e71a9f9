"""A small site and the register images of its devices, served by tests.adapters.servers.

Port A: pv-1 (103, 120, 123) unit 1, pv-2 (113 float, 121, 704) unit 2.
Port B: bat-1 (124 control) unit 1, bat-2 (802 control) unit 2.
Port C: meter (203) unit 1, heat pump (map) unit 2, data centre (map, input registers) unit 3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from adapters.regmap import load_map
from tests.adapters.servers import FakeUnit, UnitServer, sunspec_image
from tests.conftest import free_ports
from vpp.core.site import Site, parse_site

Models = list[tuple[int, dict[str, Any]]]


def common(serial: str) -> tuple[int, dict[str, Any]]:
    return (1, {"Mn": "ACME", "Md": "Sim", "Vr": "1.0", "SN": serial})


def pv_models(w: float = 3000.0, wh: float = 123456.0, dcw: float = 3100.0) -> Models:
    return [
        common("PV1"),
        (103, {"W": w, "W_SF": -1, "WH": wh, "WH_SF": 0, "DCW": dcw, "DCW_SF": 0, "St": 4}),
        (120, {"DERTyp": 4, "WRtg": 5000, "WRtg_SF": 0}),
        (123, {"Conn": 1, "WMaxLimPct": 100, "WMaxLimPct_SF": -1, "WMaxLim_Ena": 0}),
    ]


def pv_float_models(w: float = 7000.5) -> Models:
    return [
        common("PV2"),
        (113, {"W": w, "WH": 99000.0, "DCW": w + 100, "St": 5}),
        (121, {"WMax": 10000, "WMax_SF": 0}),
        (704, {"WMaxLimPctEna": 1, "WMaxLimPct": 60, "WMaxLimPct_SF": 0, "WSet_SF": 0}),
    ]


def battery_124_models(soc: float = 55.0, w: float = -1500.0) -> Models:
    return [
        common("B124"),
        (103, {"W": w, "W_SF": 0, "St": 4}),
        (
            120,
            {
                "DERTyp": 82,
                "WHRtg": 10000,
                "WHRtg_SF": 0,
                "MaxChaRte": 5000,
                "MaxChaRte_SF": 0,
                "MaxDisChaRte": 5000,
                "MaxDisChaRte_SF": 0,
            },
        ),
        (
            124,
            {
                "WChaMax": 5000,
                "WChaMax_SF": 0,
                "StorCtl_Mod": 0,
                "ChaState": soc,
                "ChaState_SF": 0,
                "ChaSt": 4,
                "OutWRte": 0,
                "InWRte": 0,
                "InOutWRte_SF": 0,
                "InOutWRte_RvrtTms": 0,
            },
        ),
    ]


def battery_802_models(soc: float = 80.0, w: float = 2500.0) -> Models:
    return [
        common("B802"),
        (701, {"W": w, "W_SF": 0, "St": 1}),
        (702, {"WMaxRtg": 10000, "WChaRteMaxRtg": 10000, "WDisChaRteMaxRtg": 10000, "W_SF": 0}),
        (
            704,
            {
                "WSetEna": 0,
                "WSetMod": 1,
                "WSet": 0,
                "WSet_SF": 0,
                "WSetRvrtTms": 0,
                "WMaxLimPct_SF": 0,
            },
        ),
        (
            802,
            {
                "WHRtg": 20000,
                "WHRtg_SF": 0,
                "WChaRteMax": 10000,
                "WDisChaRteMax": 10000,
                "WChaDisChaMax_SF": 0,
                "SoC": soc,
                "SoC_SF": 0,
                "SoCMax": 95,
                "SoCMin": 5,
                "ChaSt": 3,
            },
        ),
    ]


def meter_models(w: float = 12000.0) -> Models:
    return [
        common("M1"),
        (203, {"W": w, "W_SF": 1, "TotWhImp": 5_000_000, "TotWhExp": 1_000_000, "TotWh_SF": 0}),
    ]


HEAT_PUMP = {
    "el_setpoint_w": 200000.0,
    "setpoint_revert_s": 0.0,
    "el_power_w": 180000.0,
    "th_power_w": 540000.0,
    "source_temp_c": 32.5,
    "supply_temp_c": 70.1,
    "running": 1.0,
}
DATACENTRE = {
    "it_power_w": 1.2e6,
    "waste_heat_temp_c": 35.5,
    "flow_m3_per_h": 90.0,
    "waste_heat_w": 1.0e6,
}


def map_unit(unit: int, map_name: str, values: Mapping[str, float]) -> FakeUnit:
    """A unit whose registers hold ``values`` encoded with a register map."""
    rmap = load_map(map_name)
    start = min(r.address for r in rmap.registers)
    end = max(r.address + r.size for r in rmap.registers)
    fake = FakeUnit(unit, [0] * (end - start), start=start)
    for channel, value in values.items():
        address, regs = rmap.encode(channel, value)
        fake.set(address, regs)
    return fake


def site_dict(ports: Sequence[int], read_write: bool = False, **poll: Any) -> dict[str, Any]:
    a, b, c = ports
    ep = {"timeout_s": 0.5, "retries": 0, "read_write": read_write}
    return {
        "site": {"name": "test"},
        "grid": {"import_limit_w": 1e6, "export_limit_w": 1e6, "meter": "meter"},
        "poll": {"breaker_failures": 2, "breaker_reset_s": 30.0, **poll},
        "devices": [
            {"id": "pv-1", "kind": "pv", "rated_w": 5000, "modbus": {"port": a, "unit": 1, **ep}},
            {
                "id": "pv-2",
                "kind": "pv",
                "rated_w": 10000,
                "control": "704",
                "modbus": {"port": a, "unit": 2, **ep},
            },
            {
                "id": "bat-1",
                "kind": "battery",
                "capacity_wh": 10000,
                "max_charge_w": 5000,
                "max_discharge_w": 5000,
                "modbus": {"port": b, "unit": 1, **ep},
            },
            {
                "id": "bat-2",
                "kind": "battery",
                "capacity_wh": 20000,
                "max_charge_w": 10000,
                "max_discharge_w": 10000,
                "control": "802",
                "modbus": {"port": b, "unit": 2, **ep},
            },
            {"id": "meter", "kind": "meter", "modbus": {"port": c, "unit": 1, **ep}},
            {
                "id": "hp",
                "kind": "heat_pump",
                "max_el_w": 400000,
                "modbus": {"port": c, "unit": 2, **ep},
            },
            {
                "id": "dc",
                "kind": "datacentre",
                "it_power_w": 1.5e6,
                "modbus": {"port": c, "unit": 3, **ep},
            },
        ],
    }


@dataclass
class Fleet:
    site: Site
    servers: dict[str, UnitServer]
    units: dict[str, FakeUnit]


def fleet_units() -> dict[str, FakeUnit]:
    return {
        "pv-1": FakeUnit(1, sunspec_image(pv_models())),
        "pv-2": FakeUnit(2, sunspec_image(pv_float_models())),
        "bat-1": FakeUnit(1, sunspec_image(battery_124_models())),
        "bat-2": FakeUnit(2, sunspec_image(battery_802_models())),
        "meter": FakeUnit(1, sunspec_image(meter_models())),
        "hp": map_unit(2, "heat_pump", HEAT_PUMP),
        "dc": map_unit(3, "datacentre_meter", DATACENTRE),
    }


@asynccontextmanager
async def serve_fleet(
    units: dict[str, FakeUnit] | None = None, read_write: bool = False, **poll: Any
) -> AsyncIterator[Fleet]:
    """The small site with its servers running; stops them on exit. ``read_write``: every
    device's endpoint says it serves function code 23."""
    units = units or fleet_units()
    ports = free_ports(3)
    site = parse_site(site_dict(ports, read_write, **poll))
    by_port: dict[int, list[FakeUnit]] = {}
    for device in site.devices:
        by_port.setdefault(device.modbus.port, []).append(units[device.id])
    servers = {
        name: UnitServer(port, by_port[port]) for name, port in zip("ABC", ports, strict=True)
    }
    async with AsyncExitStack() as stack:
        for server in servers.values():
            await stack.enter_async_context(server)
        yield Fleet(site, servers, units)
