"""City-level grid signals: from the coordinator's file to each district's signal room.

The coordinator reads them (``vpp coordinator --signals FILE``, JSON, see docs/city.md) and
sends each agent the ones for it (``down/signals``, :class:`vpp.city.schema.Signals`); the
agent turns them into :class:`vpp.signals.model.Signal` of source ``city:<id>`` for its own
:class:`~vpp.signals.watch.SignalWatch`, so its safety layer holds them as it holds a
control box's (per-device bounds, grid caps), not only as caps folded into targets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from vpp.city.schema import AgentId, GridSignal
from vpp.signals.model import Signal, SignalKind

#: Source prefix of the signals the coordinator sends (the agent's watch tells them apart).
CITY_SOURCE = "city"


class SignalEntry(GridSignal):
    """One signal of the coordinator's file: for ``agents`` (None: every agent)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    agents: Annotated[list[AgentId], Field(min_length=1)] | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signals: list[SignalEntry]


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


def read_city_signals(path: Path, agents: list[str]) -> dict[str, list[GridSignal]]:
    """The file's signals per agent; ValueError naming the file and the bad field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = TypeAdapter(_File).validate_python(raw)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None
    out: dict[str, list[GridSignal]] = {a: [] for a in agents}
    for i, entry in enumerate(parsed.signals):
        for a in entry.agents or agents:
            if a not in out:
                raise ValueError(f"{path}: signals.{i}.agents: {a!r} is not one of this city's")
            out[a].append(GridSignal(**entry.model_dump(exclude={"agents"})))
    for a, found in out.items():
        for g in found:  # the rules of vpp.signals (a feed-in needs its %, ...)
            try:
                to_signal(g)
            except ValueError as exc:
                raise ValueError(f"{path}: signal {g.id!r} for {a}: {exc}") from None
    return out
