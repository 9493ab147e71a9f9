"""The terminal log of ``vpp run``: one INFO line per plan and per dispatch, warnings that
repeat rate-limited.

A warning that comes again and again (a device that stays offline, a source that keeps
failing, a job that keeps missing its run) is logged the first time; its repeats within
``window_s`` are counted, not printed, and the next one after the window carries the count
("... [12 more like this since 10:15:00]"). Messages are alike when they differ only in
their numbers. The window runs on the controller's clock, so a fast demo and a test with a
manual clock see the same lines as a live run; INFO lines are never held back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

#: Repeats of one warning within this many controller seconds are counted, not printed.
REPEAT_WINDOW_S = 300.0
#: Distinct warnings remembered; the oldest are forgotten beyond it.
MAX_KEYS = 2000
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*")


@dataclass(slots=True)
class _Seen:
    first: datetime
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    """Lets the first of alike warnings through, counts the repeats within ``window_s`` and
    adds the count to the first one after it. ``now`` is the controller's clock."""

    def __init__(self, now: Callable[[], datetime], window_s: float = REPEAT_WINDOW_S) -> None:
        super().__init__()
        self.now = now
        self.window_s = window_s
        self._seen: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, _NUMBER.sub("#", record.getMessage()))
        now = self.now()
        seen = self._seen.get(key)
        if seen is not None and (now - seen.first).total_seconds() < self.window_s:
            seen.suppressed += 1
            return False
        if seen is not None and seen.suppressed:
            since = seen.first.strftime("%H:%M:%S")
            record.msg = f"{record.getMessage()} [{seen.suppressed} more like this since {since}]"
            record.args = None
        self._seen.pop(key, None)
        self._seen[key] = _Seen(now)
        while len(self._seen) > MAX_KEYS:
            del self._seen[next(iter(self._seen))]
        return True


def configure(level: str, now: Callable[[], datetime] | None = None) -> RepeatFilter | None:
    """Log to stderr at ``level``; with ``now``, warnings are rate-limited on that clock.

    The libraries' own chatter is held back: the bridge reports every Modbus failure with
    the device named, pymodbus's log repeats them as raw frames."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    for noisy in ("apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if now is None:
        return None
    return install_repeat_filter(now)


def install_repeat_filter(
    now: Callable[[], datetime],
    window_s: float = REPEAT_WINDOW_S,
    handlers: list[logging.Handler] | None = None,
) -> RepeatFilter:
    """Add one :class:`RepeatFilter` to ``handlers`` (default: the root logger's)."""
    repeat = RepeatFilter(now, window_s)
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        handler.addFilter(repeat)
    return repeat


def remove_repeat_filter(
    repeat: RepeatFilter, handlers: list[logging.Handler] | None = None
) -> None:
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        handler.removeFilter(repeat)
