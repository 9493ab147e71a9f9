"""City-level grid signals reach a district as signals: the coordinator sends them
(``down/signals``, over Mosquitto to the right agent only), the agent puts them into its
own signal room and its safety layer holds them at once (before the next poll), starts and
ends them on its own clock, and refuses a stale message."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from tests.vpp.city.conftest import AGENTS, Districts, coordinator_link, link_for
from vpp.city import schema as s
from vpp.city.broker import Broker
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.link import LinkConfig
from vpp.city.metrics import AgentCollector, CoordinatorCollector
from vpp.city.signals import read_city_signals
from vpp.city.sim import ReplayAgent
from vpp.cli import app
from vpp.core.site import Site


def coordinator_for(ra: ReplayAgent) -> Coordinator:
    return Coordinator(
        CoordinatorConfig(["north"], 1e6, 1e6, grace_s=1e6),
        LinkConfig("127.0.0.1", 1, "coordinator", "-", "coordinator"),
        None,
        now=ra.clock.now,
    )


def pv_cap_ok(site: Site, ra: ReplayAgent, pct: float) -> bool:
    rated = np.array([pv.rated_w for pv in site.pv])
    return bool((ra.plant.pv_limit_w <= pct / 100 * rated + 1.0).all())


async def test_city_signals_are_held_by_the_districts_safety_layer(
    districts: Districts,
) -> None:
    site = districts.site
    ra = await districts.started()
    now = ra.clock.now()
    assert not pv_cap_ok(site, ra, 30.0)  # midday: the inverters may put out more
    later = now + timedelta(minutes=5)
    coord = coordinator_for(ra)
    await coord.set_signals({"north": [
        s.GridSignal(id="dso-1", kind="feed_in_pct", start=now, end=later + timedelta(minutes=5),
                     feed_in_pct=30.0, reason="feeder 7 overloaded"),
        s.GridSignal(id="dso-2", kind="feed_in_pct", start=later, end=later + timedelta(minutes=2),
                     feed_in_pct=10.0),
    ]})  # fmt: skip
    msg = coord.signals_message("north")
    assert await ra.agent.on_signals(s.encode(msg)) == "applied"
    # Held at once: the devices the signal bounds were written again, no poll in between.
    assert ra.clock.now() == now
    assert pv_cap_ok(site, ra, 30.0)
    assert {x.source for x in ra.ctl.state.grid_signals.active} == {"city:dso-1"}
    await ra.run_until(now + timedelta(seconds=site.poll.interval_s))
    assert pv_cap_ok(site, ra, 30.0)
    # The second one starts on the district's clock: held within one poll of its start.
    await ra.run_until(later + timedelta(seconds=site.poll.interval_s))
    assert pv_cap_ok(site, ra, 10.0)
    reg = CollectorRegistry()
    reg.register(AgentCollector(ra.agent))
    reg.register(CoordinatorCollector(coord))
    text = generate_latest(reg).decode()
    assert "vpp_city_signals_in_force 2.0" in text
    assert "vpp_city_signals_active 2.0" in text
    # ... and both end: the inverters are free again (the plan's own limits).
    await ra.run_until(later + timedelta(minutes=5, seconds=site.poll.interval_s))
    assert not ra.ctl.state.grid_signals.active
    assert not pv_cap_ok(site, ra, 30.0)
    kinds = [e.kind for e in ra.ctl.state.events if e.source == "city"]
    assert kinds == ["signals_received"]


async def test_stale_signals_are_refused_and_a_restart_takes_them_again(
    districts: Districts,
) -> None:
    ra = await districts.started()
    now = ra.clock.now()
    cap = s.GridSignal(id="x", kind="export_cap", start=now, limit_w=1000.0)
    first = s.Signals(agent="north", seq=10, sent_at=now, signals=[cap])
    assert await ra.agent.on_signals(s.encode(first)) == "applied"
    assert await ra.agent.on_signals(s.encode(first)) == "duplicate"
    older = first.model_copy(update={"seq": 9, "signals": []})
    assert await ra.agent.on_signals(s.encode(older)) == "refused"
    bad = s.encode(first).replace(b'"export_cap"', b'"volume_knob"')
    assert await ra.agent.on_signals(bad) == "refused"
    assert ra.ctl.state.grid_signals.export_cap_w == 1000.0
    kinds = [e.kind for e in ra.ctl.state.events if e.source == "city"]
    assert kinds == ["signals_received", "signals_out_of_order", "signals_invalid"]
    ra.agent.outbox.close()
    # A restarted agent hears the retained message (same seq) and holds it again.
    again = await districts.started()
    assert await again.agent.on_signals(s.encode(first)) == "applied"
    assert await again.agent.on_signals(s.encode(older)) == "refused"
    assert again.ctl.state.grid_signals.export_cap_w == 1000.0


def test_the_coordinators_signal_file_is_checked(tmp_path: Path) -> None:
    good = {"signals": [
        {"id": "dso-1", "kind": "export_cap", "start": "2026-06-01T10:00:00+00:00",
         "limit_w": 5e5, "agents": ["north"]},
        {"id": "dso-2", "kind": "feed_in_pct", "start": "2026-06-01T11:00:00+00:00",
         "end": "2026-06-01T12:00:00+00:00", "feed_in_pct": 60},
    ]}  # fmt: skip
    path = tmp_path / "signals.json"
    path.write_text(json.dumps(good))
    found = read_city_signals(path, ["north", "south"])
    assert [g.id for g in found["north"]] == ["dso-1", "dso-2"]
    assert [g.id for g in found["south"]] == ["dso-2"]
    bad = {"signals": [{**good["signals"][1], "feed_in_pct": 120}]}
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"signals\.0\.feed_in_pct"):
        read_city_signals(path, ["north"])
    path.write_text(json.dumps({"signals": [{**good["signals"][0], "agents": ["east"]}]}))
    with pytest.raises(ValueError, match="'east' is not one of this city's"):
        read_city_signals(path, ["north"])
    path.write_text(json.dumps({"signals": [{**good["signals"][0], "limit_w": None}]}))
    with pytest.raises(ValueError, match="limit_w is required"):
        read_city_signals(path, ["north"])
    (tmp_path / "pw").write_text("secret\n")
    result = CliRunner().invoke(app, [
        "coordinator", "--agents", "north", "--broker", "127.0.0.1:1",
        "--password-file", str(tmp_path / "pw"), "--signals", str(path),
    ])  # fmt: skip
    assert result.exit_code == 2 and "--signals" in result.output, result.output


@pytest.mark.timeout(120)
async def test_signals_go_over_the_broker_to_the_right_agent(
    districts: Districts, broker: Broker
) -> None:
    """The coordinator sends each agent its own signals when it connects; the broker's ACL
    lets each agent read only its own."""
    agents = [districts.make(a, link_for(broker, a)) for a in AGENTS]
    now = agents[0].clock.now()
    cap = s.GridSignal(id="sub-1", kind="export_cap", start=now, limit_w=2000.0)
    coord = Coordinator(
        CoordinatorConfig(list(AGENTS), 1e6, 1e6, grace_s=1e6,
                          signals={"north": [cap], "south": []}),
        coordinator_link(broker), None, now=agents[0].clock.now,
    )  # fmt: skip
    stop = asyncio.Event()
    tasks = [asyncio.create_task(coord.run(stop))]
    tasks += [asyncio.create_task(ra.agent.link.run(stop)) for ra in agents]  # type: ignore[union-attr]
    try:
        for ra in agents:
            await ra.start()
        deadline = time.monotonic() + 60
        while not all(ra.agent._signals_seq for ra in agents):
            assert time.monotonic() < deadline, "every agent heard its signals"
            await asyncio.sleep(0.05)
        north, south = agents
        assert [x.source for x in north.agent.city_signals] == ["city:sub-1"]
        assert north.ctl.state.grid_signals.export_cap_w == 2000.0
        assert south.agent.city_signals == []
        assert south.ctl.state.grid_signals.export_cap_w is None
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
