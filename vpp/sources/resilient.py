"""A source wrapper that never lets a failed fetch stop the plan.

A fetch fails when the inner source raises or returns garbage (see
:func:`vpp.sources.base.fetch_problems`: NaN runs, a wrong index, values outside the
schema's ranges). Then the wrapper keeps the data of earlier good fetches, counts the
failure, remembers the error for metrics, and reports one event per outage (and one when
the source recovers). The caller always gets the best data it has, flagged stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from vpp.data.schema import INDEX_NAME, STEP
from vpp.sources.base import (
    Source,
    build_source,
    fetch_problems,
    quarter_index,
    register_source,
    to_utc,
)

logger = logging.getLogger(__name__)

#: How long good data is kept: every forecast's look-back, the longest the days the issued
#: PV forecasts are scored on (:func:`vpp.forecast.issued_history`, 18 days).
DEFAULT_RETAIN = timedelta(days=19)


@dataclass(frozen=True)
class SourceEvent:
    """Something operators should see: a source failed, or works again."""

    source: str
    kind: Literal["failed", "recovered"]
    time: datetime
    message: str


EventCallback = Callable[[SourceEvent], None]


class ResilientSource:
    """Wrap ``inner`` so that its failures fall back on its last good data.

    Parameters
    ----------
    inner : Source
        The source to protect.
    events : callable, optional
        Called with a :class:`SourceEvent` when the source starts failing and when it
        recovers (not on every failed fetch of one outage).
    retain : timedelta
        Good data older than this before ``now`` is dropped.

    Attributes for metrics: ``failures`` (failed fetches so far), ``consecutive_failures``,
    ``last_success`` (time of the last good fetch, None before one), ``last_error``
    (message of the last failure, None once recovered), ``stale`` (the last fetch failed).
    """

    def __init__(
        self,
        inner: Source,
        events: EventCallback | None = None,
        retain: timedelta = DEFAULT_RETAIN,
    ) -> None:
        self.inner = inner
        self.events = events
        self.retain = retain
        self.failures = 0
        self.consecutive_failures = 0
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self._store = pd.DataFrame(
            columns=list(inner.columns), index=pd.DatetimeIndex([], tz="UTC", name=INDEX_NAME)
        ).astype(float)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def columns(self) -> tuple[str, ...]:
        return self.inner.columns

    @property
    def stale(self) -> bool:
        """True while the latest fetch failed and answers come from kept data."""
        return self.consecutive_failures > 0

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
        """The inner source's data for ``[start, end)``, or the kept data if it fails.

        The result's ``attrs["stale"]`` tells which; kept data may be shorter than the
        window, or empty if there never was a good fetch. Never raises for the inner
        source's failures.
        """
        index = quarter_index(start, end)
        if len(index) == 0:
            return self._answer(index)
        try:
            fresh = self.inner.fetch(start, end, now)
            problems = fetch_problems(fresh, self.columns, index[0], index[-1] + STEP)
            error = "; ".join(problems) if problems else None
        except Exception as exc:  # any failure of a source must not stop the plan
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self._succeeded(fresh, now)
        else:
            self._failed(error, now)
        return self._answer(index)

    def _succeeded(self, fresh: pd.DataFrame, now: datetime) -> None:
        fresh = fresh[list(self.columns)].astype(float)
        fresh.index = pd.DatetimeIndex(fresh.index).tz_convert("UTC").rename(INDEX_NAME)
        kept = self._store[~self._store.index.isin(fresh.index)]
        store = pd.concat([kept, fresh]).sort_index() if len(kept) else fresh
        self._store = store[store.index >= to_utc(now) - self.retain]
        if self.consecutive_failures:
            message = f"source {self.name} recovered after {self.consecutive_failures} failure(s)"
            logger.info(message)
            self._emit("recovered", now, message)
        self.consecutive_failures = 0
        self.last_success = now
        self.last_error = None

    def _failed(self, error: str, now: datetime) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = error
        if self.consecutive_failures > 1:
            return
        message = f"source {self.name} failed: {error}; {self._fallback_note()}"
        logger.warning(message)
        self._emit("failed", now, message)

    def _fallback_note(self) -> str:
        if self._store.empty:
            return "no earlier data to fall back on"
        last = self._store.index[-1]
        return f"using kept data up to {last.isoformat()} (stale)"

    def _emit(self, kind: Literal["failed", "recovered"], now: datetime, message: str) -> None:
        if self.events is not None:
            self.events(SourceEvent(self.name, kind, now, message))

    def _answer(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        if len(index) == 0:
            out = self._store.iloc[:0].copy()
        else:
            inside = (self._store.index >= index[0]) & (self._store.index <= index[-1])
            out = _first_run(self._store[inside]).copy()
        out.attrs["stale"] = self.stale
        return out


def _first_run(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows up to the first gap: callers expect consecutive quarter hours."""
    if len(frame) < 2:
        return frame
    steps = pd.DatetimeIndex(frame.index).to_series().diff().iloc[1:] != STEP
    return frame.iloc[: 1 + int(steps.to_numpy().argmax())] if steps.any() else frame


@register_source("resilient")
def resilient_source(
    inner: dict[str, Any], events: EventCallback | None = None, retain_days: float = 8.0
) -> ResilientSource:
    """Config form: ``{"kind": "resilient", "inner": {...}, "retain_days": 8}``."""
    return ResilientSource(
        build_source(inner, events=events), events=events, retain=timedelta(days=retain_days)
    )
