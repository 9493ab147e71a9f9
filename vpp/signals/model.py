"""A grid-operator signal: what is asked, of which devices, from when to when, by whom."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class SignalError(ValueError):
    """A signal (or a source's payload) that cannot be used; the message says why."""


class SignalKind(StrEnum):
    #: §9 EEG: PV feed-in capped at ``feed_in_pct`` % of each inverter's rating.
    FEED_IN = "feed_in_pct"
    #: §14a EnWG: consumption (battery charging, heat pump) dimmed to ``limit_w`` per
    #: device, never below the §14a floor; ``limit_w`` None: down to the floor.
    CONSUMPTION = "consumption_limit"
    #: The site's grid import or export capped at ``limit_w``.
    IMPORT_CAP = "import_cap"
    EXPORT_CAP = "export_cap"
    #: No feed-in from the site while it lasts (§51 EEG 2025: no payment at negative prices
    #: for the Solarspitzengesetz systems in ``devices``): the site's export capped at 0 W.
    ZERO_EXPORT = "zero_export"


#: What a feed-in percentage is a share of: the inverter's AC rating (§9 EEG stages) or the
#: installed peak power (the Solarspitzengesetz 60 % cap).
FeedInBasis = Literal["rated", "peak"]


@dataclass(frozen=True, slots=True)
class Signal:
    """One constraint from a grid operator, active from ``start`` until ``end`` (UTC, end
    exclusive; None: until the source revokes it).

    source : the source's id (``box-1``, later ``openadr:...``)
    devices : the scope: None for the whole site (every device the rule applies to), else
        the device ids it names
    feed_in_pct : the §9 stage, 0..100 (feed-in signals only)
    limit_w : the limit in W (consumption limits and grid caps)
    basis : what ``feed_in_pct`` is a share of: ``rated`` (AC rating) or ``peak`` (DC peak)
    ems : a §14a dim through an energy-management system behind one connection: one floor
        for all devices of the scope (the several-device formula), not 4.2 kW each
    """

    source: str
    kind: SignalKind
    start: datetime
    end: datetime | None = None
    devices: frozenset[str] | None = None
    feed_in_pct: float | None = None
    limit_w: float | None = None
    ems: bool = False
    basis: FeedInBasis = "rated"
    #: Why the signal exists, for events ("relay 60 %", "failsafe: heartbeat lost").
    reason: str = ""

    def __post_init__(self) -> None:
        where = f"signal from {self.source!r} ({self.kind.value})"
        if self.basis not in ("rated", "peak"):
            raise SignalError(f"{where}: basis must be 'rated' or 'peak', got {self.basis!r}")
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise SignalError(f"{where}: start and end must carry a time zone")
        if self.end is not None and not self.end > self.start:
            raise SignalError(f"{where}: end {self.end} is not after start {self.start}")
        if self.kind == SignalKind.FEED_IN:
            pct = self.feed_in_pct
            if pct is None or not math.isfinite(pct) or not 0.0 <= pct <= 100.0:
                raise SignalError(f"{where}: feed_in_pct must be 0..100, got {pct}")
            if self.limit_w is not None:
                raise SignalError(f"{where}: a feed-in signal takes no limit_w")
        elif self.kind == SignalKind.ZERO_EXPORT:
            if self.feed_in_pct is not None or self.limit_w is not None:
                raise SignalError(f"{where}: zero export takes neither feed_in_pct nor limit_w")
        else:
            if self.feed_in_pct is not None:
                raise SignalError(f"{where}: only a feed-in signal takes feed_in_pct")
            lim = self.limit_w
            if lim is None and self.kind != SignalKind.CONSUMPTION:
                raise SignalError(f"{where}: limit_w is required")
            if lim is not None and (not math.isfinite(lim) or lim < 0):
                raise SignalError(f"{where}: limit_w must be a finite number >= 0, got {lim}")

    def active(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when < self.end)

    def applies_to(self, device_id: str) -> bool:
        return self.devices is None or device_id in self.devices

    def describe(self) -> str:
        """``box-1: feed-in 60 %`` and the like, for events and reports."""
        if self.kind == SignalKind.FEED_IN:
            what = f"feed-in {self.feed_in_pct:g} %" + (" of peak" if self.basis == "peak" else "")
        elif self.kind == SignalKind.ZERO_EXPORT:
            what = "zero export"
        elif self.kind == SignalKind.CONSUMPTION:
            what = "§14a dim" + (f" to {self.limit_w:.0f} W" if self.limit_w is not None else "")
        else:
            what = f"{self.kind.value.replace('_', ' ')} {self.limit_w:.0f} W"
        return f"{self.source}: {what}"
