"""The ENTSO-E source against recorded A44 responses, read by entsoe-py's own client and
parser over HTTP on loopback (no network)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from tests.conftest import free_port
from tests.vpp.sources.entsoe_server import (
    TOKEN,
    FakePlatform,
    Recording,
    loopback_session,
    serve,
)
from vpp.sources import SourceConfigError, SourceError, build_source
from vpp.sources.entsoe import PRICE, EntsoeSource

NOW = pd.Timestamp("2026-11-21T12:00Z")
SPRING = "a44_de_lu_2023-03-26_pt60m.xml"
AUTUMN = "a44_de_lu_2023-10-29_pt60m.xml"
QUARTERLY = "a44_de_lu_2025-10-26_pt15m.xml"


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform([Recording.load(n) for n in (SPRING, AUTUMN, QUARTERLY)])


@pytest.fixture
def source(platform: FakePlatform, monkeypatch: pytest.MonkeyPatch) -> Iterator[EntsoeSource]:
    monkeypatch.setenv("ENTSOE_API_KEY", TOKEN)
    with serve(platform) as base:
        yield EntsoeSource(session=loopback_session(base), retry_count=1, retry_delay_s=0)


def local_day(day: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(day, tz="Europe/Berlin")
    end = (start + pd.Timedelta(hours=26)).normalize()
    return start.tz_convert("UTC"), end.tz_convert("UTC")


def test_autumn_dst_day_has_25_hourly_prices_each_on_four_quarter_hours(
    source: EntsoeSource, platform: FakePlatform
) -> None:
    start, end = local_day("2023-10-29")
    prices = source.fetch(start, end, NOW)[PRICE]
    assert len(prices) == 100  # 25 hours
    assert prices.index[0] == pd.Timestamp("2023-10-28T22:00Z")
    assert (prices.index.to_series().diff().iloc[1:] == pd.Timedelta(minutes=15)).all()
    hourly = prices.to_numpy().reshape(25, 4)
    assert (hourly == hourly[:, :1]).all()  # an hourly price on each of its quarters
    # 00:00-01:00 local (CEST) and both passes of 02:00-03:00, as SMARD lists them.
    assert prices["2023-10-28T22:00Z"] == 14.05
    assert prices["2023-10-29T00:45Z"] == 0.01  # 02:00 CEST
    assert prices["2023-10-29T01:00Z"] == 0.02  # 02:00 CET
    assert prices["2023-10-29T22:45Z"] == 38.41  # 23:00-24:00 CET
    query = platform.requests[-1]
    assert query["periodStart"] == "202310282200"
    assert query["classificationSequence_AttributeInstanceComponent.position"] == "1"


def test_spring_dst_day_has_23_hours(source: EntsoeSource) -> None:
    start, end = local_day("2023-03-26")
    prices = source.fetch(start, end, NOW)[PRICE]
    assert len(prices) == 92
    assert prices["2023-03-25T23:00Z"] == 39.66  # 00:00 CET
    assert prices["2023-03-26T01:15Z"] == 40.12  # 03:15 CEST: 02:00-03:00 does not exist
    assert prices.notna().all()


def test_fifteen_minute_prices_are_kept_and_a03_gaps_repeat_the_price(
    source: EntsoeSource,
) -> None:
    start, end = local_day("2025-10-26")
    prices = source.fetch(start, end, NOW)[PRICE]
    assert len(prices) == 100  # 25 hours of native quarter hours
    # First local hour: 14.05 + (3, 1, 1, -5); the third point is left out by A03.
    assert prices.iloc[:4].tolist() == [17.05, 15.05, 15.05, 9.05]
    assert prices.iloc[4:8].tolist() == [3.96, 1.96, 1.96, -4.04]
    assert prices.nunique() > 25  # really quarter-hourly, not hourly repeated


def test_window_inside_a_document_is_cut_to_the_quarter_hours_asked(
    source: EntsoeSource,
) -> None:
    start = pd.Timestamp("2023-10-29T10:30Z")
    frame = source.fetch(start, start + pd.Timedelta(hours=2), NOW)
    assert frame.index[0] == start and len(frame) == 8
    assert list(frame.columns) == [PRICE] and frame.index.name == "time"


def test_prices_not_yet_published_end_the_frame_early(source: EntsoeSource) -> None:
    start, _ = local_day("2023-10-30")
    frame = source.fetch(start, start + pd.Timedelta(hours=36), NOW)
    assert frame.index[-1] == pd.Timestamp("2023-10-30T22:45Z")  # end of the published day
    assert len(frame) == 96 and frame[PRICE].notna().all()


def test_nothing_published_is_a_source_error(source: EntsoeSource) -> None:
    start = pd.Timestamp("2030-01-01T00:00Z")
    with pytest.raises(SourceError, match="no day-ahead prices for DE_LU"):
        source.fetch(start, start + pd.Timedelta(days=1), NOW)


def test_platform_error_is_a_source_error(source: EntsoeSource, platform: FakePlatform) -> None:
    platform.down = True
    start, end = local_day("2023-10-29")
    with pytest.raises(SourceError, match="request failed: 503"):
        source.fetch(start, end, NOW)


def test_unreachable_platform_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTSOE_API_KEY", TOKEN)
    session = loopback_session(f"http://127.0.0.1:{free_port()}")
    source = EntsoeSource(session=session, retry_count=1, retry_delay_s=0, timeout_s=2)
    start, end = local_day("2023-10-29")
    with pytest.raises(SourceError, match="request failed"):
        source.fetch(start, end, NOW)


def test_missing_token_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_ENTSOE_TOKEN", raising=False)
    with pytest.raises(SourceConfigError, match="MY_ENTSOE_TOKEN is not set"):
        EntsoeSource(token_env="MY_ENTSOE_TOKEN")
    monkeypatch.setenv("MY_ENTSOE_TOKEN", "  ")
    with pytest.raises(SourceConfigError, match="MY_ENTSOE_TOKEN"):
        build_source({"kind": "entsoe", "token_env": "MY_ENTSOE_TOKEN"})


def test_unknown_area_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTSOE_API_KEY", TOKEN)
    with pytest.raises(SourceConfigError, match="unknown area 'XX'"):
        EntsoeSource(area="XX")
