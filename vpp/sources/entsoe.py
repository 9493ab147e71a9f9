"""Day-ahead prices from the ENTSO-E transparency platform, through entsoe-py.

The request is document type A44 (day-ahead prices) for one bidding zone; for DE-LU and AT,
which publish a second price sequence beside the SDAC result, classification sequence 1
(SDAC), as entsoe-py's pandas client asks too. entsoe-py's raw client sends the request
and its own ``parse_prices`` reads the XML: it sorts the points by the resolution their
``Period`` declares and fills the positions that curve type A03 leaves out (a repeated
price).

On quarter hours: an hourly price (DE-LU until 30 September 2025) applies to all four of
its quarter hours; a 15-minute price (SDAC since 1 October 2025) is kept as it is; where a
zone publishes both for the same quarter hour, the finer one wins.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd
import requests
from bs4 import XMLParsedAsHTMLWarning
from entsoe.entsoe import EntsoeRawClient
from entsoe.exceptions import NoMatchingDataError
from entsoe.mappings import lookup_area
from entsoe.parsers import parse_prices as _parse_prices

from vpp.data.schema import INDEX_NAME, STEP
from vpp.data.timegrid import LOCAL_TZ
from vpp.sources.base import SourceConfigError, SourceError, quarter_index

PRICE = "price_eur_per_mwh"
#: entsoe-py's names for the resolutions it sorts prices by, finest last.
_RESOLUTIONS = {"60min": pd.Timedelta(hours=1), "30min": pd.Timedelta(minutes=30),
                "15min": pd.Timedelta(minutes=15)}  # fmt: skip
#: entsoe-py's parser (untyped there): A44 XML -> prices by resolution, UTC index.
_parse: Callable[[str], dict[str, pd.Series]] = _parse_prices
#: Zones that publish a second day-ahead price sequence beside SDAC.
_SEQUENCED_ZONES = frozenset({"DE_LU", "AT"})


def parse_prices(xml: str) -> dict[str, pd.Series]:
    """entsoe-py's A44 parser: prices by resolution (``"60min"``, ``"15min"``...), UTC index."""
    with warnings.catch_warnings():
        # It reads XML with an HTML parser on purpose (lower-cased tags); bs4 warns about that.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return _parse(xml)


def read_token(token_env: str) -> str:
    """The API token from environment variable ``token_env``.

    Raises :class:`SourceConfigError` naming the variable when it is unset or empty.
    """
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise SourceConfigError(
            f"ENTSO-E source: environment variable {token_env} is not set; put the "
            "transparency platform's API token (securityToken) in it"
        )
    return token


def prices_on_quarter_hours(
    by_resolution: dict[str, pd.Series], index: pd.DatetimeIndex
) -> pd.Series:
    """Prices [EUR/MWh] per quarter hour of ``index`` from entsoe-py's ``parse_prices`` result.

    Each price covers its own interval (its resolution) and no more; quarter hours no
    price covers are NaN. Raises :class:`SourceError` on two different prices for one
    instant in one resolution.
    """
    out = pd.Series(np.nan, index=index, name=PRICE)
    for key, length in _RESOLUTIONS.items():
        series = by_resolution.get(key)
        if series is None or len(series) == 0:
            continue
        series = _unique_instants(series.astype(float), key)
        series.index = pd.DatetimeIndex(series.index).tz_convert("UTC")
        out = _spread(series, length, index).combine_first(out)  # finer ones come later, win
    return out.rename(PRICE)


def _spread(series: pd.Series, length: pd.Timedelta, index: pd.DatetimeIndex) -> pd.Series:
    """Each price on the quarter hours of its own interval ``[t, t + length)``."""
    repeats = int(length / STEP) - 1
    if repeats == 0:
        return series.reindex(index)
    return series.reindex(index, method="ffill", limit=repeats)


def _unique_instants(series: pd.Series, key: str) -> pd.Series:
    clashes = series.groupby(level=0).nunique() > 1
    if clashes.any():
        first = clashes[clashes].index[0]
        raise SourceError(f"ENTSO-E: two different {key} prices for {first}")
    return series[~series.index.duplicated(keep="first")].sort_index()


def request_window(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Whole local delivery days covering ``[start, end)``, as the platform publishes them."""
    first = start.tz_convert(LOCAL_TZ).normalize()
    last = (end - pd.Timedelta(microseconds=1)).tz_convert(LOCAL_TZ).normalize()
    after = (last + pd.Timedelta(hours=36)).normalize()  # next local midnight, DST-safe
    return first.tz_convert("UTC"), after.tz_convert("UTC")


class EntsoeSource:
    """Day-ahead prices of one bidding zone [EUR/MWh] from the ENTSO-E transparency platform.

    Source kind ``entsoe`` (registered in :mod:`vpp.sources.base`, imported on first use).

    Parameters
    ----------
    token_env : str
        Environment variable holding the API token; read when the source is built.
    area : str
        entsoe-py area name, e.g. ``"DE_LU"``.
    session : requests.Session, optional
        HTTP session for the client (proxies, certificates, connection reuse).
    timeout_s : int
        Timeout of one HTTP request [s].
    retry_count, retry_delay_s : int
        entsoe-py's attempts on connection errors, and its wait between them [s].
    name : str
        Name in messages and metrics.
    """

    columns: tuple[str, ...] = (PRICE,)

    def __init__(
        self,
        token_env: str = "ENTSOE_API_KEY",
        area: str = "DE_LU",
        *,
        session: requests.Session | None = None,
        timeout_s: int = 30,
        retry_count: int = 2,
        retry_delay_s: int = 5,
        name: str = "entsoe",
    ) -> None:
        try:
            self.area = lookup_area(area)
        except (KeyError, ValueError):
            raise SourceConfigError(f"ENTSO-E source: unknown area {area!r}") from None
        self.name = name
        self._client = EntsoeRawClient(
            api_key=read_token(token_env), session=session, retry_count=max(1, retry_count),
            retry_delay=retry_delay_s, timeout=timeout_s,
        )  # fmt: skip

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
        """Published prices for ``[start, end)``, ending early where none are published yet.

        Raises :class:`SourceError` when the platform has no prices for the window or
        answers with an error.
        """
        index = quarter_index(start, end)
        if len(index) == 0:
            return pd.DataFrame({PRICE: pd.Series(dtype=float)}, index=index)
        xml = self._query(index[0], index[-1] + STEP)
        prices = prices_on_quarter_hours(parse_prices(xml), index)
        known = prices.notna().to_numpy()
        # Beyond the last published price the market has not cleared yet: end there.
        last = len(known) - int(np.argmax(known[::-1])) if known.any() else 0
        frame = prices.iloc[:last].to_frame()
        frame.index.name = INDEX_NAME
        return frame

    def _query(self, start: pd.Timestamp, end: pd.Timestamp) -> str:
        period_start, period_end = request_window(start, end)
        # Asked only where a second sequence exists, as entsoe-py's pandas client does.
        sequence = {"sequence": 1} if self.area.name in _SEQUENCED_ZONES else {}
        try:
            text: str = self._client.query_day_ahead_prices(
                self.area, start=period_start, end=period_end, **sequence
            )
        except NoMatchingDataError:
            raise SourceError(
                f"{self.name}: no day-ahead prices for {self.area.name} from "
                f"{period_start.isoformat()} to {period_end.isoformat()}"
            ) from None
        except requests.RequestException as exc:
            raise SourceError(f"{self.name}: request failed: {exc}") from exc
        return text
