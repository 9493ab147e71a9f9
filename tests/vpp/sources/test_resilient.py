"""Resilient and composite sources: last good data on failures, events, recovery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpp.sources import (
    CompositeSource,
    FileSource,
    ResilientSource,
    SourceError,
    SourceEvent,
    build_source,
    quarter_index,
)
from vpp.sources.resilient import DEFAULT_RETAIN

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "inputs_sample.csv"
PRICE = "price_eur_per_mwh"
T0 = pd.Timestamp("2026-06-15T00:00Z")
H = pd.Timedelta(hours=1)


class Scripted:
    """A price source whose next answers the test decides."""

    name = "scripted"
    columns = (PRICE,)

    def __init__(self) -> None:
        self.behaviour: Callable[[pd.DatetimeIndex], pd.DataFrame] = self.good

    @staticmethod
    def good(index: pd.DatetimeIndex) -> pd.DataFrame:
        return pd.DataFrame({PRICE: np.arange(len(index), dtype=float)}, index=index)

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
        return self.behaviour(quarter_index(start, end))


def raising(index: pd.DatetimeIndex) -> pd.DataFrame:
    raise SourceError("platform answered 503")


def with_nan_run(index: pd.DatetimeIndex) -> pd.DataFrame:
    frame = Scripted.good(index)
    frame.iloc[3:7, 0] = np.nan
    return frame


def out_of_range(index: pd.DatetimeIndex) -> pd.DataFrame:
    return Scripted.good(index) + 9000.0  # above the schema's 4000 EUR/MWh


def wrong_index(index: pd.DatetimeIndex) -> pd.DataFrame:
    return Scripted.good(index).reset_index(drop=True)


def shifted(index: pd.DatetimeIndex) -> pd.DataFrame:
    return Scripted.good(index + pd.Timedelta(minutes=5))


@pytest.fixture
def inner() -> Scripted:
    return Scripted()


@pytest.fixture
def events() -> list[SourceEvent]:
    return []


@pytest.fixture
def source(inner: Scripted, events: list[SourceEvent]) -> ResilientSource:
    return ResilientSource(inner, events=events.append)


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (raising, "SourceError: platform answered 503"),
        (with_nan_run, "4 value(s) missing"),
        (out_of_range, "above 4000"),
        (wrong_index, "not a datetime index"),
        (shifted, "not aligned"),
    ],
)
def test_failure_keeps_last_good_data_flags_it_stale_and_counts(
    source: ResilientSource,
    inner: Scripted,
    events: list[SourceEvent],
    garbage: Callable[[pd.DatetimeIndex], pd.DataFrame],
    reason: str,
) -> None:
    good = source.fetch(T0, T0 + 24 * H, T0)
    assert good.attrs["stale"] is False and len(good) == 96
    inner.behaviour = garbage
    later = T0 + 2 * H
    got = source.fetch(later, later + 24 * H, later)
    # The kept data for the part of the window it covers, unchanged.
    assert got.attrs["stale"] is True and source.stale
    assert got.index[0] == later and got.index[-1] == T0 + 24 * H - pd.Timedelta(minutes=15)
    assert got[PRICE].equals(good[PRICE][later:])
    assert source.failures == 1 and source.consecutive_failures == 1
    assert source.last_success == T0
    assert source.last_error is not None and reason in source.last_error
    (event,) = events
    assert event.kind == "failed" and event.source == "scripted" and event.time == later
    assert reason in event.message and "stale" in event.message


def test_one_event_per_outage_and_one_on_recovery(
    source: ResilientSource, inner: Scripted, events: list[SourceEvent]
) -> None:
    source.fetch(T0, T0 + H, T0)
    inner.behaviour = raising
    for k in range(1, 4):
        source.fetch(T0 + k * H, T0 + (k + 1) * H, T0 + k * H)
    assert source.failures == 3 and [e.kind for e in events] == ["failed"]
    inner.behaviour = Scripted.good
    fresh = source.fetch(T0 + 4 * H, T0 + 5 * H, T0 + 4 * H)
    assert fresh.attrs["stale"] is False and not source.stale
    assert fresh[PRICE].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert [e.kind for e in events] == ["failed", "recovered"]
    assert "after 3 failure(s)" in events[-1].message
    assert source.failures == 3 and source.last_error is None
    assert source.last_success == T0 + 4 * H


def test_failure_without_earlier_data_gives_an_empty_stale_frame(
    source: ResilientSource, inner: Scripted, events: list[SourceEvent]
) -> None:
    inner.behaviour = raising
    got = source.fetch(T0, T0 + H, T0)
    assert got.empty and list(got.columns) == [PRICE] and got.attrs["stale"] is True
    assert "no earlier data" in events[0].message


def test_new_data_replaces_kept_data_and_old_data_is_dropped(
    source: ResilientSource, inner: Scripted
) -> None:
    source.fetch(T0, T0 + 48 * H, T0)
    inner.behaviour = lambda index: Scripted.good(index) + 100.0
    now = T0 + (DEFAULT_RETAIN.days + 1) * 24 * H
    source.fetch(T0 + 24 * H, T0 + 30 * H, now)
    inner.behaviour = raising
    got = source.fetch(T0, T0 + 48 * H, now)
    # Older than DEFAULT_RETAIN before now is gone; the refreshed hours carry the new values,
    # the others keep the first fetch's.
    assert got.index[0] == T0 + 24 * H and len(got) == 96
    assert got[PRICE].iloc[0] == 100.0 and got[PRICE].iloc[23] == 123.0
    assert got[PRICE].iloc[24] == 120.0 and got[PRICE].iloc[-1] == 191.0


def test_composite_takes_each_column_from_its_first_source() -> None:
    prices = ResilientSource(Scripted())
    rest = FileSource(SAMPLE, shift="calendar")
    both = CompositeSource([prices, rest])
    assert both.columns[0] == PRICE and set(rest.columns) <= set(both.columns)
    got = both.fetch(T0, T0 + 6 * H, T0)
    assert got[PRICE].tolist() == list(range(24))  # from the scripted source, not the file
    expected = rest.fetch(T0, T0 + 6 * H, T0)
    assert got["pv_w_per_kwp"].equals(expected["pv_w_per_kwp"])
    assert got.attrs["stale"] is False


def test_composite_reports_stale_parts_and_pads_short_columns() -> None:
    inner = Scripted()
    prices = ResilientSource(inner)
    both = CompositeSource([prices, FileSource(SAMPLE, columns=["pv_w_per_kwp"])])
    both.fetch(T0, T0 + 2 * H, T0)
    inner.behaviour = raising
    got = both.fetch(T0, T0 + 4 * H, T0 + H)
    assert got.attrs["stale"] is True and got.attrs["stale_sources"] == ["scripted"]
    assert len(got) == 16 and got["pv_w_per_kwp"].notna().all()
    assert got[PRICE].iloc[:8].notna().all() and got[PRICE].iloc[8:].isna().all()


def test_built_from_config_with_the_event_callback(tmp_path: Path) -> None:
    seen: list[SourceEvent] = []
    config = {
        "kind": "composite",
        "sources": [
            {"kind": "resilient", "inner": {"kind": "file", "path": str(tmp_path / "gone.csv"),
                                            "columns": [PRICE]}},
        ],
    }  # fmt: skip
    with pytest.raises(Exception, match="not found"):
        build_source(config, events=seen.append)  # a missing file fails at build time
    config["sources"] = [
        {"kind": "resilient", "inner": {"kind": "file", "path": str(SAMPLE), "shift": "none"}}
    ]
    source = build_source(config, events=seen.append)
    assert isinstance(source, CompositeSource)
    (part,) = source.sources
    assert isinstance(part, ResilientSource) and part.events is not None
    # Past the sample's end: the file source raises, the wrapper reports it.
    source.fetch(pd.Timestamp("2019-01-01T00:00Z"), pd.Timestamp("2019-01-01T01:00Z"), T0)
    assert [e.kind for e in seen] == ["failed"] and "no data for 2019-01-01" in seen[0].message
