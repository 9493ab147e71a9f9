"""Operator actions: validated inputs and their effects on the controller.

Inputs are validated on the HTTP server's thread; the :class:`Operator`'s methods run on the
control loop (see :mod:`vpp.web.link`). Each accepted action is recorded as an event (source
``operator``) through the controller, so the recorder stores it, and then takes effect:

- a cap on grid import or export for a time window goes into ``state.caps``, where the next
  plan and the safety layer find it, and triggers a re-plan so it bites at once;
- pause sets ``state.dry_run``: setpoints are still computed and recorded, not written;
- a re-plan runs the ``plan`` job, then ``dispatch``, in a background task. Requests that
  arrive while one runs are folded into one more run after it, and a run waits while the
  scheduler's own plan job is busy, so two plans are never solved at once from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vpp.control.state import ControllerState, Event, OperatorCap
from vpp.core.clock import Clock
from vpp.web.views import cap_id
from vpp.web.watch import Watch

log = logging.getLogger("vpp.web")

#: Longest window of one cap.
MAX_CAP_WINDOW = timedelta(days=7)
#: A cap's start and end lie within this much before and after now (a start a little in the
#: past is "from now on"; dates far out are typing errors, and beyond year 9999 they
#: overflow).
CAP_PAST = timedelta(days=1)
CAP_FUTURE = timedelta(days=365)
#: Caps that ended longer ago than this are dropped when a new one is added.
KEEP_ENDED_CAPS = timedelta(days=1)
#: Wall seconds a re-plan waits for the scheduler's plan job before it goes ahead anyway.
PLAN_JOB_WAIT_S = 120.0
PLAN_JOB_POLL_S = 0.1


class _Input(BaseModel):
    # Strict: a number must be a JSON number and a flag a JSON bool, not a string of one.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CapInput(_Input):
    """``POST /api/caps``: a cap on import or export, W, for [start, end) (ISO-8601, zone).

    Validated with the context ``now`` (the controller's time: start and end within
    :data:`CAP_PAST` before and :data:`CAP_FUTURE` after it, end after it) and ``site`` (the
    cap at most the site's limit in its direction: a cap can only lower it).
    """

    direction: Literal["import", "export"]
    limit_w: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    start: AwareDatetime
    end: AwareDatetime
    reason: Annotated[str, Field(min_length=1, max_length=200)]

    @field_validator("limit_w")
    @classmethod
    def _at_most_the_site_limit(cls, limit_w: float, info: ValidationInfo) -> float:
        site = (info.context or {}).get("site")
        direction = info.data.get("direction")
        if site is None or direction is None:
            return limit_w
        site_w = site.grid.import_limit_w if direction == "import" else site.grid.export_limit_w
        if limit_w > site_w:
            raise ValueError(
                f"{limit_w:.6g} W is above the site's {direction} limit of {site_w:.6g} W "
                f"(a cap can only lower it)"
            )
        return limit_w

    @field_validator("start", "end")
    @classmethod
    def _near_now(cls, when: datetime, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("now")
        if now is not None and not now - CAP_PAST <= when <= now + CAP_FUTURE:
            raise ValueError(
                f"must lie between {CAP_PAST.days} day before and {CAP_FUTURE.days} days "
                f"after now ({now.astimezone(UTC).isoformat()})"
            )
        return when

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError("reason must be printable text")
        return value

    @field_validator("end")
    @classmethod
    def _window(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is None:  # start itself was invalid and is reported on its own
            return end
        if end <= start:
            raise ValueError("end must be after start")
        if end - start > MAX_CAP_WINDOW:
            raise ValueError(f"a cap may last at most {MAX_CAP_WINDOW.days} days")
        now = (info.context or {}).get("now")
        if now is not None and end <= now:
            raise ValueError("the window has already ended")
        return end


class PauseInput(_Input):
    """``POST /api/pause``: true pauses control (dry-run), false resumes it."""

    dry_run: bool


class ReplanInput(_Input):
    """``POST /api/replan``: an empty object, or a reason for the event log."""

    reason: Annotated[str, Field(max_length=200)] = ""


class Operator:
    """Applies operator actions to ``state``, recording each through ``controller``.

    ``controller`` is a :class:`~vpp.control.controller.Controller` (or None: then actions
    are recorded in the state's event list only, and a re-plan is not possible).
    """

    def __init__(self, state: ControllerState, controller: Any, clock: Clock, watch: Watch) -> None:
        self.state = state
        self.controller = controller
        self.clock = clock
        self.watch = watch
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def record(self, kind: str, message: str) -> None:
        """An ``info`` event from source ``operator`` (stored by the recorder if there is one)."""
        if self.controller is not None:
            self.controller.event("info", "operator", kind, message)
        else:
            self.state.add_event(Event(self.clock.now(), "info", "operator", kind, message))

    # -- caps -------------------------------------------------------------------------------

    def add_cap(self, cap_in: CapInput, who: str) -> tuple[OperatorCap, str]:
        """Store the cap (a new list, so readers see the old or the new one) and re-plan;
        returns the cap and how the re-plan went (see :meth:`replan`)."""
        now = self.clock.now()
        cap = OperatorCap(
            cap_in.direction,
            cap_in.limit_w,
            cap_in.start.astimezone(UTC),
            cap_in.end.astimezone(UTC),
            cap_in.reason,
            created_at=now,
        )
        kept = [c for c in self.state.caps if c.end > now - KEEP_ENDED_CAPS]
        self.state.caps = [*kept, cap]
        self.record(
            "cap_set",
            f"{who} capped {cap.direction} at {cap.limit_w / 1e3:.1f} kW "
            f"from {cap.start.isoformat()} to {cap.end.isoformat()} "
            f"(id {cap_id(cap)}): {cap.reason}",
        )
        return cap, self.replan(f"{cap.direction} cap set")

    def remove_cap(self, ident: str, who: str) -> tuple[OperatorCap, str] | None:
        """Remove the cap with id ``ident`` and re-plan; None if there is no such cap."""
        found = next((c for c in self.state.caps if cap_id(c) == ident), None)
        if found is None:
            return None
        self.state.caps = [c for c in self.state.caps if c is not found]
        self.record(
            "cap_removed",
            f"{who} removed the {found.direction} cap of {found.limit_w / 1e3:.1f} kW (id {ident})",
        )
        return found, self.replan(f"{found.direction} cap removed")

    # -- pause ------------------------------------------------------------------------------

    def pause(self, dry_run: bool, who: str) -> bool:
        """Pause (dry-run) or resume control; returns the new dry-run flag."""
        was = self.state.dry_run
        self.state.dry_run = dry_run
        if dry_run:
            self.record(
                "control_paused",
                f"{who} paused control: setpoints are computed "
                f"but not written{' (already paused)' if was else ''}",
            )
        else:
            self.record(
                "control_resumed", f"{who} resumed control{' (was not paused)' if not was else ''}"
            )
        return self.state.dry_run

    # -- re-plan ----------------------------------------------------------------------------

    @property
    def can_replan(self) -> bool:
        return self.controller is not None

    @property
    def replan_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def request_replan(self, reason: str, who: str) -> str:
        """An operator's re-plan: recorded, then started (see :meth:`replan`)."""
        suffix = f": {reason}" if reason else ""
        self.record("replan_requested", f"{who} asked for a re-plan{suffix}")
        return self.replan("operator request")

    def replan(self, why: str) -> str:
        """Start a re-plan in the background: "started", "queued" (one is running, another
        follows it) or "unavailable" (no controller)."""
        if self.controller is None:
            return "unavailable"
        if self.replan_running:
            self._again = True
            return "queued"
        log.info("re-plan requested: %s", why)
        self._task = asyncio.create_task(self._replan(), name="vpp-operator-replan")
        return "started"

    async def _replan(self) -> None:
        while True:
            self._again = False
            await self._wait_for_plan_job()
            await self.controller.run_job("plan")
            # Near a quarter-hour boundary the new plan starts at the next quarter: then the
            # scheduled dispatch at the boundary applies it, and there is nothing to apply now.
            if self.controller.current_row() is not None:
                await self.controller.run_job("dispatch")
            if not self._again:
                return

    async def _wait_for_plan_job(self) -> None:
        # Bounded: a plan job that hangs must not keep the operator's re-plan out for ever.
        for _ in range(int(PLAN_JOB_WAIT_S / PLAN_JOB_POLL_S)):
            if not self.watch.plan_job_running():
                return
            await asyncio.sleep(PLAN_JOB_POLL_S)

    async def wait_idle(self) -> None:
        """Until no re-plan runs (for tests and shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Cancel a re-plan in progress (the server is stopping)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
