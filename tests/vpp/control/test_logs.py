"""What the terminal shows of a real run on a manual clock: one INFO line per plan (source,
cost, solve time, slack) and per dispatch (written, read back, clamped), one line for the
devices that go offline at once, and warnings that repeat rate-limited with their count."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from vpp.control.runner import step
from vpp.core.clock import ManualClock
from vpp.logs import RepeatFilter, install_repeat_filter, remove_repeat_filter
from vpp.testing.harness import plant, small_site

START = datetime(2026, 6, 21, 8, 0, tzinfo=UTC)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.name, record.getMessage()))


@pytest.fixture
def collect() -> Iterator[Collect]:
    handler = Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_run_logs_one_line_per_plan_and_dispatch(collect: Collect) -> None:
    site = small_site()
    # A silent device's trial request waits out its timeout in wall time: one trial every
    # 10 minutes of the hour (pv-003 still answers again before 09:00), not every 2.
    poll = site.poll.model_copy(update={"breaker_reset_s": 600.0})
    site = site.model_copy(update={"poll": poll})
    async with plant(site, START) as p:
        repeat = install_repeat_filter(p.clock.now, 300.0, [collect])
        try:
            # Two batteries and a PV inverter stop answering before the start.
            for dev in ("bat-001", "bat-002", "pv-003"):
                p.fleet.device(dev).fault = "silent"
            for job in ("poll", "plan", "dispatch"):
                assert await p.ctl.run_job(job)
            await step(p.ctl, p.clock, START + timedelta(minutes=50))
            p.fleet.device("pv-003").fault = "none"
            await step(p.ctl, p.clock, START + timedelta(minutes=62))
        finally:
            remove_repeat_filter(repeat, [collect])
        state = p.ctl.state
        dispatches = state.jobs["dispatch"].runs

    plans = [m for lvl, name, m in collect.lines if lvl == "INFO" and m.startswith("plan ")]
    assert len(plans) == state.plans_total >= 4
    for line in plans:
        assert re.fullmatch(
            r"plan optimal from optimizer: \d+ steps \d\d:\d\d-\d\d:\d\d UTC, "
            r"cost -?\d+\.\d\d EUR, solve \d+\.\d\d s of \d+ s \(total \d+\.\d\d s\), "
            r"slack (none|.+ kWh)",
            line,
        ), line
    sent = [m for lvl, name, m in collect.lines if lvl == "INFO" and m.startswith("dispatch ")]
    assert len(sent) == dispatches >= 5
    online_controllable = 6 + 4 + 1 - 3  # PV, batteries, heat pump; three of them silent
    first = re.fullmatch(
        r"dispatch 08:00 UTC: (\d+) of (\d+) setpoints written, (\d+) read back as written, "
        r"(\d+) clamped",
        sent[0],
    )
    assert first is not None, sent[0]
    written, proposed, read_back, _ = map(int, first.groups())
    assert written == proposed == read_back == online_controllable
    assert any(m.startswith("dispatch 09:00 UTC: 9 of 9") for m in sent), sent  # pv-003 back

    warnings = [(name, m) for lvl, name, m in collect.lines if lvl in ("WARNING", "ERROR")]
    still = [m for _, m in warnings if "still offline" in m]
    # Devices that stay offline: summarised every 15 minutes, not at every poll.
    assert len(still) == 4, still
    assert still[0] == (
        "3 of 13 devices still offline (bat-001, bat-002, pv-003), the longest since 08:00 UTC"
    )
    assert still[-1] == (
        "2 of 13 devices still offline (bat-001, bat-002), the longest since 08:00 UTC"
    )
    warnings = [(n, m) for n, m in warnings if "still offline" not in m]
    offline = [m for _, m in warnings if "went offline" in m or " offline: " in m]
    # Three devices went offline at one poll: one line with their names and the count.
    assert offline == ["3 devices went offline (bat-001, bat-002, pv-003); 3 of 13 offline"], (
        warnings
    )
    back = [m for lvl, _, m in collect.lines if "answer again" in m]
    assert back == ["1 device(s) answer again (pv-003); 2 of 13 offline"]
    # An hour with three silent devices: the other warnings stay few (each once, then counted).
    assert len(warnings) <= 12, warnings
    texts = [m for _, m in warnings]
    assert len(texts) == len(set(texts)) or any("more like this" in m for m in texts), texts


def test_repeated_warnings_are_counted_then_summarised() -> None:
    clock = ManualClock(START)
    handler = Collect()
    log = logging.getLogger("vpp.test.repeat")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    repeat = RepeatFilter(clock.now, window_s=300.0)
    handler.addFilter(repeat)
    try:
        for _ in range(10):  # every poll, 10 s apart: once, then counted
            log.warning("pv-%03d: cannot connect to 127.0.0.1:%d", 7, 15100)
            log.info("poll took %.2f s", 0.25)  # INFO is never held back
            clock.advance(10)
        log.warning("a different warning")
        clock.advance(300)
        log.warning("pv-%03d: cannot connect to 127.0.0.1:%d", 7, 15100)
        log.warning("pv-%03d: cannot connect to 127.0.0.1:%d", 8, 15100)  # alike: counted
    finally:
        log.removeHandler(handler)
        log.propagate = True
    warnings = [m for lvl, _, m in handler.lines if lvl == "WARNING"]
    assert warnings == [
        "pv-007: cannot connect to 127.0.0.1:15100",
        "a different warning",
        "pv-007: cannot connect to 127.0.0.1:15100 [9 more like this since 08:00:00]",
    ]
    assert sum(1 for lvl, _, _ in handler.lines if lvl == "INFO") == 10
