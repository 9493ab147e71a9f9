"""A simulated control box on loopback, read over the Modbus bridge: contacts, heartbeat,
bad payloads and the failsafe of a silent source (manual clock, no sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from adapters.bridge import ModbusBridge
from adapters.controlbox import ControlBoxReader
from adapters.sim.controlbox import SimControlBox
from adapters.sim.server import ControlBoxServer
from tests.conftest import LOOPBACK, free_port
from vpp.core.clock import ManualClock
from vpp.core.site import ControlBoxSource
from vpp.signals.model import SignalKind
from vpp.signals.sources import SourceTracker

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


@dataclass
class Box:
    sim: SimControlBox
    server: ControlBoxServer
    tracker: SourceTracker
    reader: ControlBoxReader
    clock: ManualClock


@pytest.fixture(params=["discrete_inputs", "coils"])
async def box(request: pytest.FixtureRequest) -> AsyncIterator[Box]:
    config = ControlBoxSource(
        id="box-1",
        modbus={"port": free_port(), "unit": 7, "timeout_s": 0.3, "retries": 0},
        relays={"table": request.param},
        feed_in_pct_register=3,
        heartbeat_timeout_s=60.0,
    )
    clock = ManualClock(T0)
    sim = SimControlBox(config, clock)
    server = ControlBoxServer(LOOPBACK, config.modbus.port, sim)
    await server.start()
    async with ModbusBridge(breaker_failures=100) as bridge:
        reader = ControlBoxReader(bridge, config)
        try:
            yield Box(sim, server, SourceTracker(config, reader.read, T0), reader, clock)
        finally:
            await server.stop()


async def test_the_reader_sees_the_relays_heartbeat_and_register(box: Box) -> None:
    first = await box.reader.read()
    assert first.contacts == {
        "feed_in_100": True,
        "feed_in_60": False,
        "feed_in_30": False,
        "feed_in_0": False,
        "dim_14a": False,
    }
    assert first.feed_in_pct_raw == 100
    box.sim.set_feed_in(30)
    box.sim.set_dim(True)
    box.clock.advance(5)
    second = await box.reader.read()
    assert second.contacts["feed_in_30"] and second.contacts["dim_14a"]
    assert not second.contacts["feed_in_100"]
    assert second.feed_in_pct_raw == 30
    assert second.heartbeat == (first.heartbeat or 0) + 5


async def test_relay_flips_become_signals_at_the_next_read(box: Box) -> None:
    assert await box.tracker.poll(box.clock.now()) == []  # 100 %, no dim: nothing asked
    assert box.tracker.signals == ()
    box.sim.set_feed_in(60)
    box.clock.advance(5)
    [note] = await box.tracker.poll(box.clock.now())
    assert note.kind == "signal_changed"
    assert "feed-in 60 %" in note.message
    [signal] = box.tracker.signals
    assert (signal.kind, signal.feed_in_pct, signal.source) == (SignalKind.FEED_IN, 60.0, "box-1")
    box.sim.set_dim(True)
    box.clock.advance(5)
    await box.tracker.poll(box.clock.now())
    assert {s.kind for s in box.tracker.signals} == {SignalKind.FEED_IN, SignalKind.CONSUMPTION}
    assert signal in box.tracker.signals  # unchanged signals keep their start


@pytest.mark.parametrize("bad", ["register", "two relays", "no relay"])
async def test_a_bad_payload_is_a_clear_error_and_changes_nothing(box: Box, bad: str) -> None:
    box.sim.set_feed_in(60)
    await box.tracker.poll(box.clock.now())
    before = box.tracker.signals
    if bad == "register":
        box.sim.set_register(3, 250)
        expected = "feed-in register 3 reads 250, not a percentage 0..100"
    elif bad == "two relays":
        box.sim.contacts["feed_in_30"] = True
        expected = "relays 60 % and 30 % are closed at once"
    else:
        box.sim.contacts["feed_in_60"] = False
        expected = "no feed-in relay is closed"
    box.clock.advance(5)
    [note] = await box.tracker.poll(box.clock.now())
    assert (note.level, note.kind) == ("error", "signal_bad_payload")
    assert expected in note.message
    assert "last valid signals stay in force" in note.message
    assert box.tracker.signals == before
    box.clock.advance(5)
    assert await box.tracker.poll(box.clock.now()) == []  # reported once per episode


async def test_heartbeat_loss_puts_the_devices_into_failsafe_until_it_moves_again(
    box: Box,
) -> None:
    await box.tracker.poll(box.clock.now())
    box.sim.stop_heartbeat()
    for _ in range(6):  # 60 s: at the timeout, not past it
        box.clock.advance(10)
        assert await box.tracker.poll(box.clock.now()) == []
    box.clock.advance(10)
    [note] = await box.tracker.poll(box.clock.now())
    assert note.kind == "signal_failsafe_on"
    assert {(s.kind, s.feed_in_pct, s.limit_w) for s in box.tracker.signals} == {
        (SignalKind.FEED_IN, 60.0, None),
        (SignalKind.CONSUMPTION, None, 4200.0),
    }
    box.sim.start_heartbeat()
    box.clock.advance(10)
    [note] = await box.tracker.poll(box.clock.now())
    assert note.kind == "signal_failsafe_off"
    assert box.tracker.signals == ()


async def test_a_box_that_stops_answering_goes_to_failsafe_after_the_timeout(box: Box) -> None:
    await box.tracker.poll(box.clock.now())
    await box.server.stop()
    box.clock.advance(30)
    [note] = await box.tracker.poll(box.clock.now())
    assert note.kind == "signal_source_failed"
    box.clock.advance(40)
    notes = await box.tracker.poll(box.clock.now())
    assert [n.kind for n in notes] == ["signal_failsafe_on"]
    await box.server.start()
    box.clock.advance(10)
    notes = await box.tracker.poll(box.clock.now())
    assert [n.kind for n in notes] == ["signal_failsafe_off"]
    assert box.tracker.signals == ()


async def test_a_box_never_heard_of_gets_the_timeout_as_grace_at_start(box: Box) -> None:
    await box.server.stop()
    tracker = SourceTracker(box.tracker.config, box.reader.read, box.clock.now())
    box.clock.advance(59)
    assert [n.kind for n in await tracker.poll(box.clock.now())] == ["signal_source_failed"]
    box.clock.advance(2)
    assert [n.kind for n in await tracker.poll(box.clock.now())] == ["signal_failsafe_on"]
    assert timedelta(0) < box.clock.now() - T0
