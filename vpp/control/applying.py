"""The jobs that write setpoints (dispatch, correct, keepalive) and the bookkeeping of
every write: the last safety check, what was read back, counters and events."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from vpp.control import cycle
from vpp.control import events as ev
from vpp.control.invariants import Limits, enforce
from vpp.control.plant import Written
from vpp.control.recording import Recording
from vpp.control.safety import Setpoint
from vpp.control.state import SetpointStatus
from vpp.control.tracking import few
from vpp.core.clock import floor_quarter
from vpp.core.kinds import BY_SETPOINT

log = logging.getLogger("vpp.control")


class Applying(Recording):
    """Dispatch, correct, keepalive and every write (a part of
    :class:`~vpp.control.controller.Controller`)."""

    def step_now(self) -> list[Setpoint] | None:
        """The safe setpoints of the plan's step now (:func:`cycle.step_setpoints` with the
        caps, signal bounds, the store's estimate and the correction period in force); None
        when no plan covers the quarter hour. Dispatch and signal re-application share it."""
        return cycle.step_setpoints(
            self.site,
            self.current_row(),
            self.state.snapshot,
            self._caps_in_force(),
            self.clock.now(),
            self._signal_bounds(),
            store_wh=self.store.energy_wh,
            correction_s=self.state.correction_every_s(),
            spare_wh=self.store_spare_wh(),
        )

    async def dispatch(self) -> None:
        """Apply the current step of the plan to every online device."""
        setpoints = self.step_now()
        if setpoints is None:
            self.event("warning", "dispatch", "no_plan", "no plan covers this quarter hour")
            return
        statuses = await self.apply(setpoints, "dispatch")
        log.info(
            "%s",
            dispatch_line(
                floor_quarter(self.clock.now()), len(setpoints), statuses, self.state.dry_run
            ),
        )

    async def correct(self) -> None:
        """Hold the grid exchange (limits or schedule) with the batteries between quarter
        hours, and the heat pump to the measured heat demand (``run.heat_correction``)."""
        st = self.state
        active = {d: s.requested_w for d, s in st.setpoints.items() if s.quantity == "battery_w"}
        setpoints = cycle.correction(
            self.site,
            self.current_row(),
            st.snapshot,
            active,
            self._caps_in_force(),
            self.clock.now(),
            self._signal_bounds(),
            store_wh=self.store.energy_wh,
            correction_s=st.correction_every_s(),
            spare_wh=self.store_spare_wh(),
            ahead=self.export_ahead(),
        )
        if setpoints:
            await self.apply(setpoints, "correct")

    async def keepalive(self) -> None:
        """Rewrite the active setpoints before the devices' revert timers run out."""
        st = self.state
        active = [
            Setpoint(s.device_id, BY_SETPOINT[s.quantity], s.requested_w, s.planned_w)
            for s in st.setpoints.values()
            if s.written_w is not None
        ]
        setpoints = cycle.keepalive(
            self.site,
            active,
            st.snapshot,
            self._caps_in_force(),
            self.clock.now(),
            self._signal_bounds(),
        )
        if setpoints:
            await self.apply(setpoints, "keepalive")

    async def apply(self, setpoints: list[Setpoint], source: str) -> list[SetpointStatus]:
        """Write (unless dry-run) a batch of safe setpoints and record what was read back;
        returns the statuses of the setpoints that were not superseded.

        The invariants (:mod:`vpp.control.invariants`) are checked once more right before
        the write, whatever produced the batch: a setpoint that breaks one is not written
        and becomes an error event."""
        now = self.clock.now()
        st = self.state
        # Operator caps and grid-operator signals (bounds and caps) hold on every write.
        limits = Limits.at(self.site, self._caps_in_force(), now, self._signal_bounds())
        checked = enforce(self.site, st.snapshot, setpoints, limits, cycle.seconds_left(now))
        for violation in checked.violations:
            st.invariant_violations_total += 1
            self.event("error", source, "setpoint_unsafe", str(violation), violation.device_id)
        setpoints = checked.passed
        if not setpoints:
            return []
        if self.state.dry_run:
            results = [Written(sp.device_id, None, None, True) for sp in setpoints]
        else:
            results = await self.plant.write(setpoints)
        statuses = []
        for sp, result in zip(setpoints, results, strict=True):
            if result.superseded:
                continue  # a newer setpoint for the device was written instead
            status = _status(sp, result, now, self.state.dry_run)
            statuses.append(status)
            self._count(status, source)
            if not status.dry_run:
                failures = self.state.write_failures
                if status.ok:
                    failures.pop(status.device_id, None)
                else:
                    failures[status.device_id] = failures.get(status.device_id, 0) + 1
            if status.ok or status.dry_run or status.written_w is not None:
                # The active setpoint is what the device read back; a write that failed
                # before anything was written leaves the previous one on record.
                self.state.setpoints[status.device_id] = status
                self.state.setpoints_revision += 1
        if self.listener is not None:
            self.listener(source, statuses)
        if self.recorder is not None and statuses:
            await asyncio.to_thread(
                self._record,
                "setpoints",
                self.recorder.record_setpoints,
                [ev.setpoint_record(s) for s in statuses],
                self.state.dry_run,
            )
        return statuses

    def _count(self, status: SetpointStatus, source: str) -> None:
        device = status.device_id
        st = self.state
        if status.clamped:
            st.setpoint_clamps_total[device] = st.setpoint_clamps_total.get(device, 0) + 1
        if status.ok or status.dry_run:
            return
        if status.written_w is not None:
            st.readback_mismatches_total[device] = st.readback_mismatches_total.get(device, 0) + 1
            self.event(
                "warning",
                source,
                "readback_mismatch",
                f"{device}: read back {status.read_back_w} after writing {status.written_w}",
                device,
            )
        else:
            st.setpoint_refusals_total[device] = st.setpoint_refusals_total.get(device, 0) + 1
            self.event("warning", source, "setpoint_failed", f"{device}: {status.message}", device)


def dispatch_line(
    step: datetime, proposed: int, statuses: list[SetpointStatus], dry_run: bool
) -> str:
    """One line per dispatch: setpoints written, read back as written, clamped, failed."""
    written = sum(1 for s in statuses if s.written_w is not None)
    ok = sum(1 for s in statuses if s.ok and s.written_w is not None)
    clamped = sum(1 for s in statuses if s.clamped)
    failed = sorted(s.device_id for s in statuses if not s.ok and not s.dry_run)
    held = proposed - len(statuses)
    head = f"dispatch {step:%H:%M} UTC: "
    if proposed == 0:
        return head + "no setpoint to write: no controllable device answers"
    if dry_run:
        return (
            head + f"{len(statuses)} setpoints computed, none written (dry-run), {clamped} clamped"
        )
    line = (
        head
        + f"{written} of {proposed} setpoints written, {ok} read back as written, {clamped} clamped"
    )
    if failed:
        line += f", {len(failed)} failed ({few(failed)})"
    if held > 0:
        line += f", {held} not written (unsafe or superseded)"
    return line


def _status(sp: Setpoint, result: Written, now: datetime, dry_run: bool) -> SetpointStatus:
    message = "; ".join(m for m in (sp.reason, result.message) if m)
    return SetpointStatus(
        sp.device_id,
        sp.quantity,
        now,
        sp.planned_w,
        sp.power_w,
        result.written,
        result.read_back,
        ok=result.ok,
        clamped=sp.clamped or result.clamped,
        dry_run=dry_run,
        message=message,
    )
