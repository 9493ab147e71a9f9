"""The watchdog job: stale data, plan age, a fallback plan retried out of turn, the
recorder's backups and retention."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from vpp.control import backups, cycle
from vpp.control.applying import Applying
from vpp.control.planning import Planning
from vpp.recorder.export import apply_retention

#: How often the watchdog applies the recorder's retention.
RETENTION_EVERY = timedelta(hours=1)
#: A failed recorder backup is tried again after this long.
BACKUP_RETRY = timedelta(minutes=15)


class Upkeep(Planning, Applying):
    """The watchdog job (part of :class:`~vpp.control.controller.Controller`)."""

    async def watchdog(self) -> None:
        """Stale data, plan age, jobs that keep failing; a fallback plan retried out of turn;
        retention of the recorder."""
        now = self.clock.now()
        if cycle.replan_due(self.state.plan, self.state.plan_created_at, now):
            await self.plan()
            if self.state.plan is not None and self.state.plan.info.status == "optimal":
                self.event(
                    "info", "watchdog", "plan_recovered", "an optimal plan is in force again"
                )
                await self.dispatch()
        snap = self.state.snapshot
        stale_after = self.state.stale_after_s()
        if snap is None or (now - snap.time).total_seconds() > stale_after:
            self.event(
                "error",
                "watchdog",
                "stale_snapshot",
                f"no fresh snapshot for more than {stale_after:.0f} s",
            )
        age = (
            (now - self.state.plan_created_at).total_seconds()
            if self.state.plan_created_at
            else None
        )
        if age is None or age > 2 * 15 * 60:
            self.event(
                "error",
                "watchdog",
                "plan_stale",
                "no plan" if age is None else f"plan is {age / 60:.0f} min old",
            )
        if self.recorder is not None:
            await self._backup(now)
        due = self._last_retention is None or now - self._last_retention >= RETENTION_EVERY
        if self.recorder is not None and due:
            # Deleting old rows takes seconds at a thousand devices: once an hour is enough.
            self._last_retention = now
            await asyncio.to_thread(
                self._record, "retention", apply_retention, self.recorder, now, self.site
            )

    async def _backup(self, now: datetime) -> None:
        """A recorder backup into ``run.backup_dir`` when one is due (vpp.control.backups)."""
        out = backups.due(self.site, now)
        failed = self._backup_failed_at
        if out is None or (failed is not None and now - failed < BACKUP_RETRY):
            return
        keep = self.site.run.backup_keep
        try:
            result, old = await asyncio.to_thread(backups.write, self.recorder.path, out, keep)
        except Exception as exc:  # a failed backup must not stop control; the next run retries
            self._backup_failed_at = now
            self.event("error", "watchdog", "backup_failed", f"recorder backup failed: {exc}")
            return
        self._backup_failed_at = None
        self.event(
            "info",
            "watchdog",
            "backup_written",
            f"recorder backup {result.path}: {result.bytes / 1e6:.1f} MB in "
            f"{result.seconds:.1f} s, integrity {result.check}; {len(old)} old copies removed",
        )
