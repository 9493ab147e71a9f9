"""Events and recording: every event goes to the controller's state, the log and the
recorder; a record the recorder cannot take now waits in a bounded queue."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from vpp.control import events as ev
from vpp.control.base import ControllerBase

log = logging.getLogger("vpp.control")

#: Records kept while the recorder cannot store them (about 4 h of polls at 10 s with the
#: plans, setpoints and events between them); beyond it the oldest go and are counted.
PENDING_RECORDS = 5000


class Recording(ControllerBase):
    """The controller's events and records (part of :class:`~vpp.control.controller.Controller`)."""

    def event(
        self,
        level: str,
        source: str,
        kind: str,
        message: str,
        device: str | None = None,
        *,
        logged: bool = True,
    ) -> None:
        """Record an event (state, recorder) and log it; ``logged=False`` when the caller
        logs one line for many events."""
        event = ev.Event(self.clock.now(), level, source, kind, message, device)
        self.state.add_event(event)
        if logged:
            getattr(log, "warning" if level != "info" else "info")("%s", message)
        if self.recorder is not None:
            self._record(
                "event",
                self.recorder.record_event,
                level,
                source,
                kind,
                message,
                device=device,
                time=event.time,
            )

    def _record(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Store one record; a record the recorder cannot take now (disk full, locked) waits
        in a bounded queue and is stored, in order, before the next one."""
        with self._pending_lock:
            self._pending.append((what, fn, args, kw))
            if len(self._pending) > PENDING_RECORDS:
                self._pending.popleft()
                self.state.recorder_dropped_total += 1
            while self._pending:
                what, fn, args, kw = self._pending[0]
                try:
                    fn(*args, **kw)
                except Exception as exc:  # recording must not stop control
                    self.state.recorder_errors_total += 1
                    self.state.recorder_pending = len(self._pending)
                    if self._recorder_ok:  # log the transition, not every record
                        log.error("recorder failed to store %s: %s; keeping records", what, exc)
                    self._recorder_ok = False
                    return
                self._pending.popleft()
            if not self._recorder_ok:
                log.info("recorder stores again; nothing was lost")
            self._recorder_ok = True
            self.state.recorder_pending = 0
