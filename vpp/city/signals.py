"""City-level grid signals: from the coordinator's file or its operator API to each
district's signal room, and the substation's caps into the city plan.

The coordinator reads them (``vpp coordinator --signals FILE``, JSON, see docs/city.md, or
``POST /api/city/signals`` while it runs) and sends each agent the ones for it
(``down/signals``, :class:`vpp.city.schema.Signals`); the agent turns them into
:class:`vpp.signals.model.Signal` of source ``city:<id>`` for its own
:class:`~vpp.signals.watch.SignalWatch`, so its safety layer holds them as it holds a
control box's (per-device bounds, grid caps), not only as caps folded into targets.

A :class:`SubstationCap` (``POST /api/city/caps``) limits the city's exchange at the
substation for a window: the city plan holds it (below ``--import-limit-w`` /
``--export-limit-w``), and the districts follow through their targets.

File entries and API bodies pass the same checks (:func:`check_entry`) and fail with the
same words, naming the field (in a file, after ``signals.<n>.``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from vpp.city.schema import AgentId, GridSignal, NonNeg, Time
from vpp.signals.model import Signal, SignalKind

#: Source prefix of the signals the coordinator sends (the agent's watch tells them apart).
CITY_SOURCE = "city"


class SignalEntry(GridSignal):
    """One signal of the coordinator's file: for ``agents`` (None: every agent)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    agents: Annotated[list[AgentId], Field(min_length=1)] | None = None


class SubstationCap(BaseModel):
    """A cap on the city's exchange at the substation, ``start`` to ``end`` (None: until
    cancelled); held by the city plan under the coordinator's own limits."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    direction: Literal["import", "export"]
    limit_w: NonNeg
    start: Time
    end: Time | None = None
    reason: str = ""

    def active(self, now: datetime) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


class EntryError(ValueError):
    """A signal or cap that cannot be taken; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signals: list[Any]


def to_signal(g: GridSignal) -> Signal:
    """The district's view of a city signal (whole district; SignalError when unusable)."""
    return Signal(
        source=f"{CITY_SOURCE}:{g.id}",
        kind=SignalKind(g.kind),
        start=g.start,
        end=g.end,
        feed_in_pct=g.feed_in_pct,
        limit_w=g.limit_w,
        reason=g.reason or "city",
    )


def _validation_error(exc: ValidationError) -> EntryError:
    first = exc.errors()[0]
    return EntryError(".".join(str(p) for p in first["loc"]) or "body", first["msg"])


def _rule_field(message: str) -> str:
    """The field a rule of :mod:`vpp.signals` names in its message (``limit_w is required``)."""
    names = ("feed_in_pct", "limit_w", "start", "end")
    return next((n for n in names if n in message.split()), "kind")


def check_entry(raw: Any, agents: list[str]) -> tuple[SignalEntry, dict[str, GridSignal]]:
    """One signal (a file entry or an API body) and its per-agent signals; EntryError
    naming the field. The rules of :mod:`vpp.signals` hold (a feed-in needs its %, ...)."""
    try:
        entry = TypeAdapter(SignalEntry).validate_python(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    out: dict[str, GridSignal] = {}
    for a in entry.agents or agents:
        if a not in agents:
            raise EntryError("agents", f"{a!r} is not one of this city's")
        out[a] = GridSignal(**entry.model_dump(exclude={"agents"}))
    for a, g in out.items():
        try:
            to_signal(g)
        except ValueError as exc:
            raise EntryError(_rule_field(str(exc)), f"signal {g.id!r} for {a}: {exc}") from None
    if entry.end is not None and entry.end <= entry.start:
        raise EntryError("end", "must be after start")
    return entry, out


def check_cap(raw: Any) -> SubstationCap:
    """One substation cap (an API body); EntryError naming the field."""
    try:
        cap = TypeAdapter(SubstationCap).validate_python(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if cap.end is not None and cap.end <= cap.start:
        raise EntryError("end", "must be after start")
    return cap


def read_signal_entries(path: Path, agents: list[str]) -> list[SignalEntry]:
    """The file's signals; ValueError naming the file and the bad field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = TypeAdapter(_File).validate_python(raw)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{path}: {_validation_error(exc)}") from None
    entries = []
    for i, item in enumerate(parsed.signals):
        try:
            entries.append(check_entry(item, agents)[0])
        except EntryError as exc:
            raise ValueError(f"{path}: signals.{i}.{exc}") from None
    return entries


def per_agent(entries: list[SignalEntry], agents: list[str]) -> dict[str, list[GridSignal]]:
    """Each agent's signals of ``entries`` (an entry without ``agents``: every agent's)."""
    out: dict[str, list[GridSignal]] = {a: [] for a in agents}
    for entry in entries:
        for a in entry.agents or agents:
            if a in out:
                out[a].append(GridSignal(**entry.model_dump(exclude={"agents"})))
    return out


def read_city_signals(path: Path, agents: list[str]) -> dict[str, list[GridSignal]]:
    """The file's signals per agent; ValueError naming the file and the bad field."""
    return per_agent(read_signal_entries(path, agents), agents)
