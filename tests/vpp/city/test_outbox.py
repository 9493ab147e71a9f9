"""The outbox's size bound: past it, the oldest per-device summaries (then superseded
flexibility) give way to tombstones under the same numbers; telemetry and acknowledgements
are never dropped; every drop is counted, reported to the coordinator and as an event."""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from tests.vpp.replay.conftest import small_site
from vpp.city import schema as s
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.link import LinkConfig
from vpp.city.metrics import AgentCollector, CoordinatorCollector
from vpp.city.outbox import DROPPED, Outbox
from vpp.city.sim import replay_agent
from vpp.replay.data import read_replay_inputs

KEPT = ("up/telemetry", "up/ack")
STREAMS = ("up/telemetry", "up/ack", "up/devices", "up/flex")

Message = tuple[str, int]  # stream, payload size


@given(
    bound=st.integers(400, 5_000),
    messages=st.lists(st.tuples(st.sampled_from(STREAMS), st.integers(1, 900)), max_size=80),
    confirm_every=st.integers(0, 30),
)
@settings(max_examples=60, deadline=None)
def test_the_bound_drops_only_what_may_go_oldest_first(
    bound: int, messages: list[Message], confirm_every: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        box = Outbox(Path(folder) / "out.db", max_bytes=bound)
        box.tombstone = lambda seq, stream, size: json.dumps([seq, stream, size]).encode()
        sent: dict[int, tuple[str, bytes]] = {}
        for i, (stream, size) in enumerate(messages):
            payload = bytes([65 + i % 26]) * size
            seq = box.put(stream, lambda n, p=payload: p)
            sent[seq] = (stream, payload)
            held = {q: (st_, p) for q, st_, p in box.after(box.confirmed, 100_000)}
            # Numbers without gaps; the newest message always as it was put.
            assert list(held) == list(range(box.confirmed + 1, seq + 1))
            assert held[seq] == sent[seq]
            assert box.size_bytes() == sum(len(p) for _, p in held.values())
            dropped = [q for q, (st_, _) in held.items() if st_ == DROPPED]
            for q, (st_, p) in held.items():
                if st_ == DROPPED:  # a tombstone names what it replaced
                    assert json.loads(p) == [q, sent[q][0], len(sent[q][1])]
                    assert sent[q][0] in ("up/devices", "up/flex")
                else:  # everything else untouched, aggregates and acks always
                    assert (st_, p) == sent[q]
            # Oldest first: no device summary kept that is older than a dropped one.
            lost = [q for q in dropped if sent[q][0] == "up/devices"]
            kept = [q for q, (st_, _) in held.items() if st_ == "up/devices"]
            older = [q for q in kept if q != seq]
            assert not lost or not older or max(lost) < min(older)
            # Within the bound, unless only what may not go is left: telemetry, acks, the
            # newest message and the newest flexibility.
            if box.size_bytes() > bound:
                flex = [q for q, (st_, _) in held.items() if st_ == "up/flex"]
                droppable = older + [q for q in flex[:-1] if q != seq]
                assert not droppable
            if confirm_every and i % confirm_every == confirm_every - 1:
                box.confirm(seq - 1)
        counted = box.dropped()
        stones = sum(1 for q, (st_, _) in sent.items() if st_ in ("up/devices", "up/flex"))
        assert sum(counted.values()) <= stones
        box.close()


def test_a_bad_bound_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes: must be > 0, got 0"):
        Outbox(tmp_path / "out.db", max_bytes=0)


async def test_a_district_cut_off_keeps_its_bound_and_says_so(tmp_path: Path) -> None:
    site = small_site()
    day = date(2018, 5, 16)
    raw = read_replay_inputs(site, day, day)
    bound = 110_000  # 40 min: telemetry ~84 kB, device summaries ~34 kB, flexibility ~15 kB
    ra = replay_agent(site, raw, day, "north", tmp_path / "out.db", None, 11.5, bound)
    await ra.start()
    await ra.run_until(ra.clock.now() + timedelta(minutes=40))  # no coordinator, no broker
    box = ra.agent.outbox
    held = box.after(0, 100_000)
    assert box.dropped()["up/devices"] > 0
    assert box.size_bytes() <= bound
    streams = [st_ for _, st_, _ in held]
    # Every poll's aggregates are still there, the newest device summary too.
    assert streams.count("up/telemetry") == ra.agent.stats.telemetry_total
    assert "up/devices" in streams
    assert [e.kind for e in ra.ctl.state.events].count("outbox_dropped") >= 1
    reg = CollectorRegistry()
    reg.register(AgentCollector(ra.agent))
    text = generate_latest(reg).decode()
    n = box.dropped()["up/devices"]
    assert f'vpp_city_outbox_dropped_total{{stream="up/devices"}} {float(n)}' in text
    # The coordinator hears the tombstones: counts them, stores on without a gap.
    coord = Coordinator(
        CoordinatorConfig(["north"], 1e6, 1e6, grace_s=1e6),
        LinkConfig("127.0.0.1", 1, "coordinator", "-", "coordinator"),
        None,
        now=ra.clock.now,
    )
    for _, stream, payload in held:
        coord.receive(s.topic("north", stream), payload)
    await coord.flush()
    assert coord.stored["north"] == held[-1][0]
    assert coord.stats.dropped["north"] == streams.count(DROPPED) == n
    reg = CollectorRegistry()
    reg.register(CoordinatorCollector(coord))
    assert (
        f'vpp_city_agent_dropped_total{{agent="north"}} {float(n)}' in generate_latest(reg).decode()
    )
    if coord._plan_task is not None:
        await coord._plan_task
    box.close()
