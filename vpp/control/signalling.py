"""The signals job: grid-operator signals read, applied again when they change, and
checked against what the devices read back; the caps and bounds in force for every
write and plan."""

from __future__ import annotations

from vpp.control.applying import Applying
from vpp.control.tracking import grid_w
from vpp.signals.compliance import check as check_compliance
from vpp.signals.compliance import held_w


class Signalling(Applying):
    """The signals job (a part of :class:`~vpp.control.controller.Controller`)."""

    async def signals(self) -> None:
        """Read the signal sources; when what they ask changes, apply the current setpoints
        of the devices concerned again through the safety layer, now."""
        watch = self.signal_watch
        if watch is None:
            return
        update = await watch.poll(self.clock.now())
        st = self.state
        st.grid_signals = update.resolved
        st.grid_signal_sources = {t.id: (t.silent, t.alive_at) for t in watch.trackers}
        for note in update.notes:
            st.grid_signal_conflicts_total += note.kind == "signal_conflict"
            self.event(note.level, "signals", note.kind, note.message)
        if update.changed:
            # Only the devices whose bounds changed are written again (a grid cap moves
            # every device's share, so then all are).
            await self._reapply(update.devices, caps_changed=update.caps_changed)
        self._check_compliance()

    def _check_compliance(self) -> None:
        """Compare what the devices read back (and the grid meter) with the signals; an
        event when a device stops or starts following them."""
        st = self.state
        before = st.grid_signal_compliance
        if not st.grid_signals.active and (before is None or not before.devices):
            st.grid_signal_compliance = check_compliance(None, {}, None)
            st.grid_signal_compliance_of = None
            return  # nothing to follow (most polls of most sites)
        # The signals are read every second, the devices every poll (10 s by default):
        # with the same snapshot, setpoints and signals the finding is the same.
        of = st.grid_signal_compliance_of
        if (
            of is not None
            and of[0] is st.snapshot
            and of[1] == st.setpoints_revision
            and of[2] is st.grid_signals
        ):
            return
        st.grid_signal_compliance_of = (st.snapshot, st.setpoints_revision, st.grid_signals)
        grid = None if st.snapshot is None else grid_w(self.site, st.snapshot)
        held = held_w(self.site, st.setpoints, st.snapshot)
        now = check_compliance(st.grid_signals, held, grid)
        st.grid_signal_compliance = now
        was = (
            set()
            if before is None
            else {d for d, s in before.devices.items() if s == "not_compliant"}
        )
        bad = {d for d, s in now.devices.items() if s == "not_compliant"}
        for device in sorted(bad - was):
            if device in now.reasons and "below the inverter's minimum" not in now.reasons[device]:
                self.event(
                    "warning", "signals", "signal_compliance_lost", now.reasons[device], device
                )
        for device in sorted(was - bad):
            self.event(
                "info",
                "signals",
                "signal_compliance_restored",
                f"{device} follows the signals again",
                device,
            )

    async def _reapply(self, devices: set[str], caps_changed: bool) -> None:
        """The plan's setpoints of ``devices`` for now (all devices when a grid cap changed),
        through :meth:`apply`; without a plan, the active setpoints again (keep-alive)."""
        proposed = self.step_now()
        if proposed is None:
            await self.keepalive()
            return
        if not caps_changed:
            proposed = [sp for sp in proposed if sp.device_id in devices]
        if proposed:
            await self.apply(proposed, "signals")
