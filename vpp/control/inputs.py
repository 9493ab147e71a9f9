"""External inputs for planning: sources of prices, weather and IT load, and the forecasts
made from them as known at planning time.

The default is the shipped historic year mapped onto today's calendar (the demo); a site can
name its own sources in ``[run] sources`` (e.g. ENTSO-E prices plus a weather file). Every
source is wrapped so that a failure keeps the last good data and becomes an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from vpp.control.state import SourceStatus
from vpp.data import shipped_inputs
from vpp.forecast import forecast
from vpp.sources import ResilientSource, SourceEvent, build_source

#: History handed to the forecasts: a week back covers every persistence rule.
HISTORY = timedelta(days=8)


@dataclass(frozen=True, slots=True)
class SourceProblem:
    source: str
    message: str


def default_source_configs(inputs_file: str | None) -> list[dict[str, Any]]:
    path = inputs_file or str(shipped_inputs(2018))
    return [{"kind": "file", "path": path}]


class Inputs(Protocol):
    """Where a controller's plans get their inputs: the live sources, or replay's table."""

    def history(
        self, at: datetime, horizon: timedelta, lookback: timedelta = HISTORY
    ) -> pd.DataFrame:
        """Raw input rows over ``[at - lookback, at + horizon + 1 h)`` as known at ``at``
        (the learned forecasts read a longer ``lookback`` once a day to refit)."""
        ...

    def drain_problems(self) -> list[SourceProblem]:
        """Source failures since the last call."""
        ...

    def status(self) -> dict[str, SourceStatus]:
        """Health of each source."""
        ...


class InputProvider:
    """Fetches history and forecasts the raw inputs (:mod:`vpp.data.schema` columns)."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        self._problems: list[SourceProblem] = []
        self.sources: list[ResilientSource] = [
            ResilientSource(build_source(cfg), events=self._on_event) for cfg in configs
        ]

    @classmethod
    def for_run(cls, inputs_file: str | None, configs: list[dict[str, Any]]) -> InputProvider:
        return cls(configs or default_source_configs(inputs_file))

    def _on_event(self, event: SourceEvent) -> None:
        if event.kind == "failed":
            self._problems.append(SourceProblem(event.source, event.message))

    def history(
        self, at: datetime, horizon: timedelta, lookback: timedelta = HISTORY
    ) -> pd.DataFrame:
        """Every source's columns over [at - lookback, at + horizon), first source wins."""
        start, end = at - lookback, at + horizon + timedelta(hours=1)
        frames: list[pd.DataFrame] = []
        taken: set[str] = set()
        for source in self.sources:
            frame = source.fetch(start, end, at)
            cols = [c for c in frame.columns if c not in taken]
            taken.update(cols)
            frames.append(frame[cols])
        return pd.concat(frames, axis=1) if frames else pd.DataFrame()

    def forecast(self, at: datetime, horizon: timedelta) -> pd.DataFrame:
        """Raw inputs for [at, at + horizon) as they were known at ``at``."""
        return forecast(self.history(at, horizon), at, horizon, mode="asof")

    def drain_problems(self) -> list[SourceProblem]:
        problems, self._problems = self._problems, []
        return problems

    def status(self) -> dict[str, SourceStatus]:
        return {
            s.name: SourceStatus(s.name, s.last_success, s.failures, s.stale, s.last_error)
            for s in self.sources
        }
