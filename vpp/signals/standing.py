"""Signals that follow from the law and the site file rather than from a source.

The Solarspitzengesetz (:func:`vpp.signals.rules.solarspitzen_rule`) holds PV systems
commissioned from 25 Feb 2025 without a smart-meter gateway to

- a standing feed-in cap of 60 % of their peak power (:func:`solarspitzen_cap`), and
- no feed-in while the day-ahead price is negative (§51 EEG): :func:`negative_price_signals`
  turns each run of quarter hours with a negative price into a zero-export signal for them.

They are signals like those of a control box: resolved with the others (the stricter wins
and a conflict is reported), enforced by the safety layer and planned for by the optimizer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import pandas as pd

from vpp.core.site import Site
from vpp.signals.model import Signal, SignalKind
from vpp.signals.rules import SOLARSPITZEN_PCT, solarspitzen_rule

CAP_SOURCE = "rule:solarspitzen"
NEGATIVE_PRICE_SOURCE = "rule:negative-price"


def solarspitzen_devices(site: Site) -> frozenset[str]:
    """Ids of the PV systems the Solarspitzengesetz rules hold."""
    return frozenset(d.id for d in site.pv if solarspitzen_rule(d))


def solarspitzen_cap(site: Site, since: datetime) -> tuple[Signal, ...]:
    """The standing 60 %-of-peak feed-in cap of the site's Solarspitzengesetz systems (none
    when it has none)."""
    devices = solarspitzen_devices(site)
    if not devices:
        return ()
    return (
        Signal(
            source=CAP_SOURCE,
            kind=SignalKind.FEED_IN,
            start=since,
            devices=devices,
            feed_in_pct=SOLARSPITZEN_PCT,
            basis="peak",
            reason="no smart-meter gateway",
        ),
    )


def negative_price_signals(
    site: Site, spot_eur_per_mwh: pd.Series, step: timedelta = timedelta(minutes=15)
) -> tuple[Signal, ...]:
    """Zero-export signals over each run of steps whose day-ahead price is below 0.

    spot_eur_per_mwh : day-ahead price per step [EUR/MWh], indexed by step start (UTC)
    """
    devices = solarspitzen_devices(site)
    if not devices or spot_eur_per_mwh.empty:
        return ()
    out: list[Signal] = []
    start: datetime | None = None
    last: datetime | None = None
    for when, price in spot_eur_per_mwh.sort_index().items():
        t = pd.Timestamp(cast(Any, when)).to_pydatetime()
        negative = bool(price < 0)
        contiguous = last is not None and t - last == step
        if start is not None and (not negative or not contiguous):
            assert last is not None
            out.append(_zero_export(devices, start, last + step))
            start = None
        if negative and start is None:
            start = t
        last = t
    if start is not None and last is not None:
        out.append(_zero_export(devices, start, last + step))
    return tuple(out)


def spot_from_forecast(site: Site, forecast: pd.DataFrame) -> pd.Series:
    """The day-ahead price [EUR/MWh] back from a forecast's export price (which has the
    site's export fee taken off, :func:`optimizer.inputs.forecast_from_raw`)."""
    return forecast["price_export_eur_per_mwh"] + site.grid.export_fee_eur_per_mwh


def _zero_export(devices: frozenset[str], start: datetime, end: datetime) -> Signal:
    return Signal(
        source=NEGATIVE_PRICE_SOURCE,
        kind=SignalKind.ZERO_EXPORT,
        start=start,
        end=end,
        devices=devices,
        reason="§51 EEG: negative day-ahead price",
    )
