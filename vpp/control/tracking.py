"""The poll job and what it keeps track of: implausible readings (quarantine), devices
going offline and coming back, and the accounting of cost, heat and the store estimate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from adapters.snapshot import HeatPumpReading, Snapshot
from vpp.control.plausible import Suspect, screen
from vpp.control.recording import Recording
from vpp.core.clock import floor_quarter
from vpp.core.site import Site

log = logging.getLogger("vpp.control")

#: Devices that stay offline are summarised in the log this often.
STILL_OFFLINE_EVERY = timedelta(minutes=15)


class Tracking(Recording):
    """The poll job and its bookkeeping (part of :class:`~vpp.control.controller.Controller`)."""

    async def poll(self) -> None:
        read = await self.plant.read()
        if read.devices is not self._screened_from:
            self._screened_from, self._screened = read.devices, screen(self.site, read)
        # The same readings (a plant that changes once a minute) need no second screening.
        screened = self._screened
        snapshot = replace(screened.snapshot, time=read.time)
        self._track_suspects(screened.suspects)
        now = snapshot.time
        dt_s = (now - self._last_poll).total_seconds() if self._last_poll else 0.0
        self._last_poll = now
        self.state.snapshot = snapshot
        self._track_online(snapshot)
        self._account(snapshot, dt_s)
        if self.recorder is not None:
            await asyncio.to_thread(
                self._record, "snapshot", self.recorder.record_snapshot, snapshot
            )

    def _track_suspects(self, suspects: Iterable[Suspect]) -> None:
        """An implausible reading quarantines its device (an alert, once per episode): it
        counts as offline, so control holds the plan instead of reacting to it."""
        now = {s.device_id: s for s in suspects}
        for device in sorted(set(now) - self._quarantined):
            self.state.quarantines_total += 1
            self.event("error", "poll", "reading_quarantined", str(now[device].reason), device)
        for device in sorted(self._quarantined - set(now)):
            self.event(
                "info", "poll", "reading_plausible", f"{device} reads plausibly again", device
            )
        self._quarantined = set(now)
        self.state.quarantined = frozenset(now)

    def _summarise(self, snapshot: Snapshot) -> None:
        """The offline devices and the PV output of the snapshot's readings (polls between
        two changes of a plant that changes once a minute read the same readings)."""
        if snapshot.devices is self._summed_from:
            return
        self._summed_from = snapshot.devices
        self._offline_now = {d.id for d in snapshot.offline()}
        self._pv_now_w = sum(
            getattr(d.reading, "ac_power_w", None) or 0.0
            for d in snapshot.of_kind("pv")
            if d.health.online
        )

    def _track_online(self, snapshot: Snapshot) -> None:
        """An event per device that goes offline or comes back; one log line per poll for
        all of them (a gateway failure takes dozens of devices at once)."""
        self._summarise(snapshot)
        offline = self._offline_now - self._quarantined
        gone, back = sorted(offline - self._offline), sorted(self._offline - offline)
        message = ""
        for device in gone:
            err = snapshot.devices[device].health.last_error or "no answer"
            message = f"{device} offline: {err}"
            self.event("warning", "poll", "device_offline", message, device, logged=False)
        for device in back:
            text = f"{device} answers again"
            self.event("info", "poll", "device_online", text, device, logged=False)
        total = len(snapshot.devices)
        if len(gone) == 1:
            log.warning("%s; %d of %d devices offline", message, len(offline), total)
        elif gone:
            log.warning(
                "%d devices went offline (%s); %d of %d offline",
                len(gone), few(gone), len(offline), total,
            )  # fmt: skip
        if back:
            log.info(
                "%d device(s) answer again (%s); %d of %d offline",
                len(back), few(back), len(offline), total,
            )  # fmt: skip
        self._offline = offline
        self._tell_still_offline(snapshot.time, gone, offline, total)

    def _tell_still_offline(
        self, now: datetime, gone: list[str], offline: set[str], total: int
    ) -> None:
        """Devices that stay offline are logged when they go, then summarised once every
        :data:`STILL_OFFLINE_EVERY` (controller time), not at every poll."""
        since = self._offline_since
        for device in gone:
            since[device] = now
        for device in set(since) - offline:
            del since[device]
        if gone or not offline:
            self._offline_told = now if offline else None
            return
        told = self._offline_told
        if told is not None and now - told < STILL_OFFLINE_EVERY:
            return
        self._offline_told = now
        first = min(since.values(), default=now)
        log.warning(
            "%d of %d devices still offline (%s), the longest since %s UTC",
            len(offline), total, few(sorted(offline)), f"{first:%H:%M}",
        )  # fmt: skip

    def _account(self, snapshot: Snapshot, dt_s: float) -> None:
        """Cost accrued, heat delivered, forecast error and the store estimate."""
        row = self._row_values()
        hp = self.site.heat_pump
        hp_th = demand = None
        if hp is not None:
            reading = snapshot.devices.get(hp.id)
            if reading is not None and isinstance(reading.reading, HeatPumpReading):
                hp_th, demand = reading.reading.th_power_w, reading.reading.network_th_w
        now = snapshot.time
        fraction = (now - floor_quarter(now)).total_seconds() / 900.0
        self.store.on_poll(row, hp_th, dt_s, fraction, measured_demand_th_w=demand)
        if row is None or dt_s <= 0:
            return
        grid = grid_w(self.site, snapshot)
        if grid is not None:
            price = float(
                row["price_import_eur_per_mwh"] if grid > 0 else row["price_export_eur_per_mwh"]
            )
            self.state.cost_accrued_eur += grid * dt_s / 3600 / 1e6 * price
        heat = self.state.heat_delivered_wh
        if hp_th is not None:
            heat["heat_pump"] = heat.get("heat_pump", 0.0) + hp_th * dt_s / 3600
        heat["boiler"] = heat.get("boiler", 0.0) + float(row.get("boiler_th_w", 0.0)) * dt_s / 3600
        self._summarise(snapshot)
        self.state.forecast_error_w["pv_w"] = self._pv_now_w - float(row.get("pv_w", 0.0))


def few(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def grid_w(site: Site, snapshot: Snapshot) -> float | None:
    if site.grid.meter is None:
        return None
    state = snapshot.devices.get(site.grid.meter)
    if state is None or not state.health.online or state.reading is None:
        return None
    return getattr(state.reading, "power_w", None)
