"""SMARD day-ahead prices (Bundesnetzagentur, smard.de, CC BY 4.0).

Two export layouts are read, both ``;``-separated with ``-`` for missing values and local
(Europe/Berlin) wall-clock times:

- ``Date;Time of day;Germany/Luxembourg[€/MWh];...`` (e.g. the 2018 export), times like
  ``Oct 28, 2018;2:00 AM``;
- ``Start date;End date;Germany/Luxembourg [€/MWh] Original resolutions;...`` (2023 export),
  start times like ``1-Jan, 2023 12:00 AM``.

The German price is the DE-LU column; before 1 October 2018 Germany traded in the joint
DE-AT-LU zone, whose column fills the DE-LU gap. On the autumn DST change the hour 2:00 AM
appears twice (summer time first, then winter time); the row order tells them apart.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vpp.data.timegrid import LOCAL_TZ

PRICE = "price_eur_per_mwh"
_DE_LU = ("Germany/Luxembourg",)
_DE_AT_LU = ("Germany/Austria/Luxembourg", "DE/AT/LU")


def read_smard_hourly(path: str | Path) -> pd.Series:
    """German day-ahead price per hour from a SMARD CSV export.

    Returns
    -------
    Series
        ``price_eur_per_mwh`` [EUR/MWh], index ``time``: UTC starts of the delivery hours.

    Raises ``ValueError`` naming the first hour without a German price.
    """
    raw = pd.read_csv(path, sep=";", na_values="-", thousands=",", encoding="utf-8-sig")
    local = _local_times(raw)
    price = _column(raw, _DE_LU)
    if price is None:
        raise ValueError(f"{path}: no column starting with {_DE_LU[0]!r}")
    fallback = _column(raw, _DE_AT_LU)
    if fallback is not None:
        price = price.fillna(fallback)
    index = pd.DatetimeIndex(local).tz_localize(LOCAL_TZ, ambiguous="infer")
    series = pd.Series(price.to_numpy(dtype=float), index=index.tz_convert("UTC"), name=PRICE)
    series.index.name = "time"
    missing = series[series.isna()]
    if not missing.empty:
        first = missing.index[0]
        raise ValueError(f"{path}: no German price for {len(missing)} hour(s), first {first}")
    return series


def _local_times(raw: pd.DataFrame) -> pd.Series:
    first = str(raw.columns[0]).strip()
    if first == "Date":
        text = raw["Date"].astype(str) + " " + raw["Time of day"].astype(str)
        return pd.to_datetime(text, format="%b %d, %Y %I:%M %p")
    if first == "Start date":
        return pd.to_datetime(raw["Start date"], format="%d-%b, %Y %I:%M %p")
    raise ValueError(f"unknown SMARD layout: first column {first!r}")


def _column(raw: pd.DataFrame, prefixes: tuple[str, ...]) -> pd.Series | None:
    for name in raw.columns:
        if str(name).startswith(prefixes):
            return pd.to_numeric(raw[name], errors="coerce")
    return None
