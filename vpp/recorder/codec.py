"""Turning snapshots, plans and free-form data into row values, and back.

Readings are stored as compact JSON objects with the reading's field names and only the
fields that are not None; health likewise keeps only fields that differ from a fresh
:class:`CommsHealth`, with times as epoch ms, and ``last_attempt`` only where it differs
from ``last_success``. A reading's class follows from the device kind
(:data:`READING_BY_KIND`); a reading of another class carries its class name under ``type``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import pandas as pd

from adapters.snapshot import (
    BatteryReading,
    BreakerState,
    CommsHealth,
    DatacentreReading,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Reading,
)
from vpp.recorder.db import from_ms, to_ms

READING_BY_KIND: dict[str, type[Reading]] = {
    "pv": PvReading,
    "battery": BatteryReading,
    "meter": MeterReading,
    "heat_pump": HeatPumpReading,
    "datacentre": DatacentreReading,
}
_READING_BY_NAME: dict[str, type[Reading]] = {c.__name__: c for c in READING_BY_KIND.values()}


@dataclasses.dataclass(frozen=True)
class MainFields:
    """Which reading fields fill the real columns ``power_w``, ``soc_pct``, ``energy_wh``."""

    power_w: str | None
    soc_pct: str | None = None
    #: The device's main cumulative counter: PV yield, grid-meter import.
    energy_wh: str | None = None


MAIN_FIELDS: dict[type[Reading], MainFields] = {
    PvReading: MainFields("ac_power_w", energy_wh="energy_wh"),
    BatteryReading: MainFields("power_w", soc_pct="soc_pct"),
    MeterReading: MainFields("power_w", energy_wh="import_energy_wh"),
    HeatPumpReading: MainFields("el_power_w"),
    DatacentreReading: MainFields("it_power_w"),
}
_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (*READING_BY_KIND.values(), CommsHealth)
}
_HEALTH_DEFAULT = CommsHealth()
#: Poll latency is kept to 0.1 ms: finer digits are noise and cost bytes on every row.
_LATENCY_DECIMALS = 4

#: Rows hold plain floats, str, bool and int only: the checks in dumps() are not needed.
_ROW_ENCODER = json.JSONEncoder(separators=(",", ":"))

SnapshotRow = tuple[int, int, int, int | None, Any, Any, Any, str | None, str]


def dumps(value: Any) -> str:
    """Compact JSON; numpy scalars become numbers, datetimes ISO text, NaN/inf null."""
    return json.dumps(_finite(value), separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "item"):  # numpy scalar
        return _finite(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _finite(dataclasses.asdict(value))
    return str(value)


def _finite(value: Any) -> Any:
    # SQLite's JSON functions reject NaN/Infinity tokens, so they never reach the file.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode_reading(kind: str, reading: Reading | None) -> str | None:
    """The JSON of a reading, or None when the device was never read."""
    if reading is None:
        return None
    cls = type(reading)
    out: dict[str, Any] = {}
    for name in _FIELD_NAMES[cls]:
        value = getattr(reading, name)
        if value is None or (value.__class__ is float and not math.isfinite(value)):
            continue  # a NaN reading is as unknown as a missing one
        out[name] = value
    if READING_BY_KIND.get(kind) is not cls:
        out["type"] = cls.__name__
    return _ROW_ENCODER.encode(out)


def decode_reading(kind: str, text: str | None) -> Reading | None:
    """The reading of :func:`encode_reading`'s JSON."""
    if text is None:
        return None
    data: dict[str, Any] = json.loads(text)
    name = data.pop("type", None)
    cls = _READING_BY_NAME[name] if name else READING_BY_KIND[kind]
    return cls(**{f: data.get(f) for f in _FIELD_NAMES[cls]})


def encode_health(health: CommsHealth) -> str:
    """The JSON of a device's comms health: only fields that differ from the defaults."""
    out: dict[str, Any] = {}
    for name in _FIELD_NAMES[CommsHealth]:
        value = getattr(health, name)
        if value == getattr(_HEALTH_DEFAULT, name):
            continue
        if isinstance(value, datetime):
            value = to_ms(value)
        elif name == "latency_s":
            value = round(value, _LATENCY_DECIMALS) if math.isfinite(value) else None
        out[name] = value
    # After a good poll the attempt is the success: store that time once (saves ~30 B/row).
    if "last_success" in out and out.get("last_attempt") == out["last_success"]:
        del out["last_attempt"]
    elif "last_success" in out and "last_attempt" not in out:
        out["last_attempt"] = None
    return _ROW_ENCODER.encode(out)


def decode_health(text: str) -> CommsHealth:
    """The CommsHealth of :func:`encode_health`'s JSON."""
    data: dict[str, Any] = json.loads(text)
    if "last_success" in data:
        data.setdefault("last_attempt", data["last_success"])
    for name in ("last_success", "last_attempt"):
        if data.get(name) is not None:
            data[name] = from_ms(int(data[name]))
    if "breaker" in data:
        data["breaker"] = BreakerState(data["breaker"])
    return CommsHealth(**data)


def snapshot_row(poll: int, device_key: int, state: DeviceState) -> SnapshotRow:
    """One ``snapshots`` row: keys, online flag, read time, main numbers, reading, health."""
    reading = state.reading
    power = soc = energy = None
    if reading is not None:
        main = MAIN_FIELDS[type(reading)]
        power = getattr(reading, main.power_w) if main.power_w else None
        soc = getattr(reading, main.soc_pct) if main.soc_pct else None
        energy = getattr(reading, main.energy_wh) if main.energy_wh else None
    read_at = to_ms(state.read_at) if state.read_at is not None else None
    return (
        poll, device_key, int(state.health.online), read_at, power, soc, energy,
        encode_reading(state.kind, reading), encode_health(state.health),
    )  # fmt: skip


def device_state(
    device_id: str, kind: str, read_at_ms: int | None, reading: str | None, health: str
) -> DeviceState:
    """Rebuild a DeviceState from its stored row."""
    return DeviceState(
        id=device_id,
        kind=kind,
        reading=decode_reading(kind, reading),
        health=decode_health(health),
        read_at=from_ms(read_at_ms) if read_at_ms is not None else None,
    )


def info_dict(info: Any) -> dict[str, Any]:
    """A plan's solve info as a JSON-ready dict (dataclass, mapping or plain object)."""
    if dataclasses.is_dataclass(info) and not isinstance(info, type):
        data: Any = dataclasses.asdict(info)
    elif isinstance(info, Mapping):
        data = dict(info)
    else:
        data = dict(vars(info))
    result: dict[str, Any] = json.loads(dumps(data))
    return result


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """A plan table as Parquet bytes (zstd); the UTC index is kept with its time zone."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", compression="zstd", index=True)
    return buffer.getvalue()


def frame_from_parquet(blob: bytes) -> pd.DataFrame:
    """The plan table of :func:`frame_to_parquet`, its index as UTC timestamps."""
    frame = pd.read_parquet(io.BytesIO(blob), engine="pyarrow")
    if isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index
        frame.index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return frame
