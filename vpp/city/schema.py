"""The city link's topics and payloads, version 1 (documented in docs/city.md).

Every payload is JSON of one of the pydantic models below. Each carries ``schema`` (the
version, so a reader refuses what it does not understand), the ``agent`` it concerns, a
``seq`` that grows by one per message of that stream and agent, and ``sent_at``. Powers are
in W, energies in Wh, times timezone-aware UTC (conventions of docs/architecture.md).

Topics (``<a>`` is the agent id, which is also its broker user name)::

    vpp/v1/<a>/up/status      retained, last will     AgentStatus
    vpp/v1/<a>/up/telemetry   every poll               Telemetry
    vpp/v1/<a>/up/devices     every minute             DeviceSummary
    vpp/v1/<a>/up/flex        every quarter hour       Flexibility (retained)
    vpp/v1/<a>/up/ack         per target heard         TargetAck
    vpp/v1/<a>/up/dropped     for a message dropped    Dropped (from a full outbox)
    vpp/v1/<a>/down/targets   retained, with expiry    Targets
    vpp/v1/<a>/down/sync      retained                 Sync
    vpp/v1/<a>/down/signals   retained, when changed   Signals (city-level grid signals)

An agent may publish only below ``vpp/v1/<a>/up/`` and read only ``vpp/v1/<a>/down/``;
the broker's ACL holds that (vpp/city/broker.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

SCHEMA: Literal["vpp.city/1"] = "vpp.city/1"
ROOT = "vpp/v1"
#: Quarter-hour steps of a flexibility or target schedule.
STEP_S: Literal[900] = 900

AgentId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("must carry a time zone (UTC)")
    return v.astimezone(UTC)


Time = Annotated[datetime, AfterValidator(_aware)]
NonNeg = Annotated[float, Field(ge=0.0)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_: Literal["vpp.city/1"] = Field(default=SCHEMA, alias="schema")
    agent: AgentId
    seq: Annotated[int, Field(ge=1)]
    sent_at: Time


class AgentStatus(_Payload):
    """Online when the agent connects; the broker publishes ``offline`` as its last will."""

    state: Literal["online", "offline"]


class Telemetry(_Payload):
    """The district's virtual-unit aggregates at one poll."""

    time: Time
    grid_w: float | None
    pv_w: NonNeg
    battery_w: float
    battery_soc_wh: NonNeg
    battery_capacity_wh: NonNeg
    heat_pump_el_w: NonNeg
    devices_online: Annotated[int, Field(ge=0)]
    devices_offline: Annotated[int, Field(ge=0)]
    #: "target": the coordinator's schedule is in force; "local": the agent's own plan.
    plan_source: Literal["target", "local", "none"]
    target_seq: int | None


class DeviceLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str
    kind: str
    online: bool
    power_w: float | None
    soc_pct: float | None = None
    setpoint_w: float | None = None


class DeviceSummary(_Payload):
    """Every device of the district, once a minute."""

    time: Time
    devices: list[DeviceLine]


class BatteryUnit(BaseModel):
    """The district's batteries as one virtual unit (sums of the online members)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    capacity_wh: NonNeg
    soc_wh: NonNeg
    soc_min_wh: NonNeg
    soc_max_wh: NonNeg
    max_charge_w: NonNeg
    max_discharge_w: NonNeg
    eta_charge: Annotated[float, Field(gt=0.0, le=1.0)]
    eta_discharge: Annotated[float, Field(gt=0.0, le=1.0)]
    wear_eur_per_mwh: NonNeg
    members: Annotated[int, Field(ge=0)]


class PvUnit(BaseModel):
    """The district's inverters as one virtual unit."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rated_w: NonNeg
    peak_wp: NonNeg
    min_output_w: NonNeg
    members: Annotated[int, Field(ge=0)]


class Flexibility(_Payload):
    """What the district can deliver over the next hours, from ``start`` in quarter hours.

    ``pv_available_w``: PV before curtailment; ``load_w``: the district's own demand the
    coordinator cannot move (base load, the heat pump and dry coolers as the district plans
    them); prices as the district sees them (EUR/MWh, fees included)."""

    start: Time
    step_s: Literal[900] = STEP_S
    pv_available_w: list[NonNeg]
    load_w: list[NonNeg]
    price_import_eur_per_mwh: list[float]
    price_export_eur_per_mwh: list[float]
    battery: BatteryUnit
    pv: PvUnit
    import_limit_w: NonNeg
    export_limit_w: NonNeg

    def steps(self) -> int:
        return len(self.pv_available_w)

    def check(self) -> Flexibility:
        n = len(self.pv_available_w)
        for name in ("load_w", "price_import_eur_per_mwh", "price_export_eur_per_mwh"):
            if len(getattr(self, name)) != n:
                raise PayloadError(f"flex.{name}: {len(getattr(self, name))} steps, expected {n}")
        if n == 0:
            raise PayloadError("flex.pv_available_w: no steps")
        if self.start.minute % 15 or self.start.second or self.start.microsecond:
            raise PayloadError(f"flex.start: not on a quarter hour: {self.start.isoformat()}")
        return self


class Cap(BaseModel):
    """A limit on the district's grid exchange for a window (a cap or a grid signal)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    direction: Literal["import", "export"]
    limit_w: NonNeg
    start: Time
    end: Time
    reason: str = "city"


class Targets(_Payload):
    """The coordinator's schedule for one district, from ``start`` in quarter hours.

    ``battery_w``: the district's net battery power (> 0 discharging); ``pv_w``: the most
    its inverters may put out. Refused after ``expires_at`` or when ``seq`` is not above the
    last one the agent applied."""

    start: Time
    step_s: Literal[900] = STEP_S
    expires_at: Time
    #: When the coordinator began the plan these targets come from.
    planned_at: Time
    battery_w: list[float]
    pv_w: list[NonNeg]
    caps: list[Cap] = Field(default_factory=list)

    def check(self) -> Targets:
        if len(self.pv_w) != len(self.battery_w):
            raise PayloadError(
                f"targets.pv_w: {len(self.pv_w)} steps, battery_w has {len(self.battery_w)}"
            )
        if not self.battery_w:
            raise PayloadError("targets.battery_w: no steps")
        if self.expires_at <= self.sent_at:
            raise PayloadError("targets.expires_at: not after sent_at")
        return self

    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.step_s * len(self.battery_w))


class GridSignal(BaseModel):
    """A city-level grid-operator signal for a whole district (kinds and fields as
    :class:`vpp.signals.model.Signal`): ``feed_in_pct`` for ``feed_in_pct``, ``limit_w``
    for the caps and ``consumption_limit``; ``end`` None: until a later message drops it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    kind: Literal["feed_in_pct", "consumption_limit", "import_cap", "export_cap", "zero_export"]
    start: Time
    end: Time | None = None
    feed_in_pct: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    limit_w: NonNeg | None = None
    reason: str = ""


class Signals(_Payload):
    """Every city-level signal for the district now and ahead; replaces the previous one."""

    signals: list[GridSignal]


class TargetAck(_Payload):
    """What an agent did with a target message it heard."""

    target_seq: int
    status: Literal["applied", "duplicate", "refused"]
    reason: str = ""
    at: Time


class Dropped(_Payload):
    """A message the agent's full outbox dropped before the coordinator had it (its number
    stays taken, so the numbering keeps no gaps)."""

    stream: Literal["up/devices", "up/flex"]
    size_bytes: Annotated[int, Field(ge=0)]


class Sync(_Payload):
    """The coordinator holds every message of ``agent`` numbered up to ``stored_seq``."""

    stored_seq: Annotated[int, Field(ge=0)]
    #: The coordinator (re)started or reconnected: it may have lost what it heard but had
    #: not stored, so the agent sends everything after ``stored_seq`` again.
    rewind: bool = False


class PayloadError(ValueError):
    """A payload that is not valid for its topic; the message names the field."""


P = TypeVar("P", bound=_Payload)

STREAMS: dict[str, type[_Payload]] = {
    "up/status": AgentStatus,
    "up/telemetry": Telemetry,
    "up/devices": DeviceSummary,
    "up/flex": Flexibility,
    "up/ack": TargetAck,
    "up/dropped": Dropped,
    "down/targets": Targets,
    "down/sync": Sync,
    "down/signals": Signals,
}


def topic(agent: str, stream: str) -> str:
    if stream not in STREAMS:
        raise KeyError(f"no stream {stream!r}")
    return f"{ROOT}/{agent}/{stream}"


def parse_topic(name: str) -> tuple[str, str]:
    """(agent, stream) of a topic of this schema; PayloadError otherwise."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != ROOT:
        raise PayloadError(f"topic {name!r}: not below {ROOT}/<agent>/")
    stream = "/".join(parts[3:])
    if stream not in STREAMS:
        raise PayloadError(f"topic {name!r}: unknown stream {stream!r}")
    return parts[2], stream


def encode(payload: _Payload) -> bytes:
    return payload.model_dump_json(by_alias=True).encode()


def decode(model: type[P], data: bytes | str, agent: str | None = None) -> P:
    """Parse one payload; PayloadError naming the first bad field (and every other)."""
    try:
        raw: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"{model.__name__}: not JSON: {exc}") from None
    if isinstance(raw, dict) and raw.get("schema") not in (None, SCHEMA):
        raise PayloadError(f"schema: {raw.get('schema')!r} is not {SCHEMA!r}")
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}" for e in exc.errors()
        )
        raise PayloadError(f"{model.__name__}: {fields}") from None
    if agent is not None and parsed.agent != agent:
        raise PayloadError(f"agent: {parsed.agent!r} on the topic of {agent!r}")
    check = getattr(parsed, "check", None)
    return check() if check is not None else parsed
