"""Every signal source of a site, read together: what the controller's ``signals`` job calls.

:meth:`SignalWatch.poll` reads each source once (concurrently), resolves the signals of
all of them (:func:`vpp.signals.resolve.active_bounds`) and returns the result with notes on
what changed: a source's signals, bad payloads, failsafe on and off, new conflicts and new
non-compliance. It keeps no device I/O of its own: each source is a tracker around a
``read`` coroutine (:class:`adapters.controlbox.ControlBoxReader` over the Modbus bridge in
``vpp run``, anything else in tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from vpp.core.site import ControlBoxSource, OpenAdrSource, Site
from vpp.signals.model import Signal
from vpp.signals.openadr import OpenAdrTracker
from vpp.signals.resolve import NONE, Resolved, active_bounds
from vpp.signals.sources import Note, SourceTracker
from vpp.signals.standing import negative_price_signals, solarspitzen_cap, solarspitzen_devices

ReadFn = Callable[[], Awaitable[Any]]


async def _no_vtn_reader() -> Any:
    raise ConnectionError("no VEN is configured for this VTN")


@dataclass(frozen=True, slots=True)
class Update:
    """The result of one poll of every source."""

    resolved: Resolved
    notes: list[Note]
    #: The constraints (bounds or caps) differ from the previous poll's.
    changed: bool
    #: Devices whose bounds changed.
    devices: set[str]
    #: The grid caps (import or export) changed: every device's setpoint may move.
    caps_changed: bool = False


class SignalWatch:
    """The site's signal sources; ``extra`` signals (tests, later the operator API) are
    resolved together with theirs."""

    def __init__(self, site: Site, trackers: Sequence[Any], since: datetime | None = None) -> None:
        self.site = site
        self.trackers = list(trackers)
        self.extra: list[Signal] = []
        #: Signals of the law and the site file (the Solarspitzengesetz 60 % cap).
        self.standing: tuple[Signal, ...] = (
            solarspitzen_cap(site, since) if since is not None else ()
        )
        #: Signals that follow the prices (zero export at negative prices), set from each
        #: plan's forecast by :meth:`set_prices`.
        self.scheduled: tuple[Signal, ...] = ()
        self.resolved: Resolved = NONE

    @classmethod
    def needed(cls, site: Site) -> bool:
        """Whether the site has signal sources or devices that the law's rules hold."""
        return site.signals.any_source or bool(solarspitzen_devices(site))

    def set_prices(self, spot_eur_per_mwh: pd.Series) -> None:
        """The day-ahead prices [EUR/MWh] by step start: the negative-price rule's windows."""
        self.scheduled = negative_price_signals(self.site, spot_eur_per_mwh)

    @classmethod
    def for_site(
        cls,
        site: Site,
        reader: Callable[[ControlBoxSource], Callable[[], Awaitable[Any]]],
        now: datetime,
        vtn_reader: Callable[[OpenAdrSource, Callable[[Any], str | None]], ReadFn] | None = None,
    ) -> SignalWatch:
        """A watch over ``site.signals.sources``, each read by ``reader(config)``, and the
        VTNs of ``site.signals.openadr``, each read by ``vtn_reader(config, check)``
        (``check`` says why an event cannot be used; a VTN without a reader stays silent)."""
        trackers: list[Any] = [SourceTracker(cfg, reader(cfg), now) for cfg in site.signals.sources]
        for cfg in site.signals.openadr:
            tracker = OpenAdrTracker(cfg, site, _no_vtn_reader, now)
            if vtn_reader is not None:
                tracker.read = vtn_reader(cfg, tracker.check)
            trackers.append(tracker)
        return cls(site, trackers, now)

    @property
    def signals(self) -> list[Signal]:
        return [
            *(s for t in self.trackers for s in t.signals),
            *self.standing,
            *self.scheduled,
            *self.extra,
        ]

    async def poll(self, now: datetime) -> Update:
        results = await asyncio.gather(*(t.poll(now) for t in self.trackers))
        notes = [n for found in results for n in found]
        before = self.resolved
        active = tuple(s for s in self.signals if s.active(now))
        if active == before.active:
            # The same signals resolve to the same bounds: most polls change nothing, and
            # resolving every device again each poll was most of a replay's time under the
            # 2025 rules.
            return Update(before, notes, False, set())
        resolved = active_bounds(self.site, active, now)
        self.resolved = resolved
        old = {str(c) for c in before.conflicts}
        notes += [
            Note("warning", "signal_conflict", str(c))
            for c in resolved.conflicts
            if str(c) not in old
        ]
        old_nc = set(before.non_compliant)
        notes += [
            Note("warning", "signal_not_compliant", text)
            for text in resolved.non_compliant
            if text not in old_nc
        ]
        changed = not resolved.same_constraints(before)
        caps_changed = (resolved.import_cap_w, resolved.export_cap_w) != (
            before.import_cap_w,
            before.export_cap_w,
        )
        return Update(
            resolved,
            notes,
            changed,
            resolved.changed_devices(before) if changed else set(),
            caps_changed,
        )
