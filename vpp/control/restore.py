"""Resuming after a restart: the last plan and snapshot come back from the recorder, so the
controller can dispatch the current quarter hour before its first new plan is solved."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from vpp.control.controller import Controller

log = logging.getLogger("vpp.run")


def restore(ctl: Controller) -> None:
    """Load the last plan (if it still covers now) and the last snapshot."""
    recorder = ctl.recorder
    if recorder is None:
        return
    try:
        snapshot = recorder.last_snapshot()
        last = recorder.last_plan()
    except Exception as exc:  # a damaged recorder must not keep the plant from starting
        ctl.event("error", "restore", "restore_failed", f"could not restore state: {exc}")
        return
    if snapshot is not None:
        ctl.state.snapshot = snapshot
    if last is None:
        return
    created_at, frame, info = last
    now = ctl.clock.now()
    if len(frame) == 0 or pd.Timestamp(now) >= frame.index[-1]:
        return
    ctl.state.plan = _RestoredPlan(frame, _Info(info))  # type: ignore[assignment]
    ctl.state.plan_created_at = created_at
    ctl.event(
        "info",
        "restore",
        "plan_restored",
        f"resumed with the plan made at {created_at.isoformat()}",
    )


class _Info:
    """Solve information of a restored plan, read from the recorder's JSON."""

    def __init__(self, info: Any) -> None:
        data = info if isinstance(info, dict) else {}
        for key, value in data.items():
            setattr(self, key, value)
        self.status = data.get("status", "restored")
        self.fallback_reason = data.get("fallback_reason")
        self.slacks = data.get("slacks", {})


class _RestoredPlan:
    #: Read by :func:`vpp.control.health.plan_source`: this plan was not made since the start.
    restored = True

    def __init__(self, frame: pd.DataFrame, info: _Info) -> None:
        self.frame = frame
        self.info = info
