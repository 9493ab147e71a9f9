"""The district agent on the replay plant (no broker): flexibility up, targets checked by
sequence number and expiry, split onto the devices and written, the own plan back when they
expire."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tests.vpp.city.conftest import Districts
from vpp.city import schema as s
from vpp.city.sim import ReplayAgent
from vpp.core.clock import floor_quarter


def targets(ra: ReplayAgent, seq: int, battery_w: float, pv_w: float, quarters: int = 4,
            expires_q: int = 2) -> s.Targets:  # fmt: skip
    now = ra.clock.now()
    start = floor_quarter(now) + timedelta(minutes=15)
    return s.Targets(
        agent="north", seq=seq, sent_at=now, start=start,
        expires_at=start + timedelta(minutes=15 * expires_q), planned_at=now,
        battery_w=[battery_w] * quarters, pv_w=[pv_w] * quarters,
    )  # fmt: skip


def sent(ra: ReplayAgent, stream: str) -> list[dict[str, object]]:
    return [json.loads(p) for _, st, p in ra.agent.outbox.after(0, 100_000) if st == stream]


async def test_flexibility_is_the_sum_of_the_district(
    districts: Districts,
) -> None:
    site = districts.site
    ra = await districts.started()
    flex = [s.Flexibility.model_validate(f) for f in sent(ra, "up/flex")]
    assert len(flex) == 1
    f = flex[0]
    assert f.battery.capacity_wh == sum(b.capacity_wh for b in site.batteries)
    assert f.battery.max_discharge_w == sum(b.max_discharge_w for b in site.batteries)
    assert f.pv.rated_w == sum(p.rated_w for p in site.pv)
    # The batteries' energy now: what the plant holds.
    assert f.battery.soc_wh == pytest.approx(float(ra.plant.soc.sum()), rel=1e-6)
    assert f.steps() == site.optimizer.horizon_h * 4
    assert max(f.pv_available_w) <= f.pv.rated_w + 1e-6
    tele = sent(ra, "up/telemetry")
    assert tele and tele[-1]["battery_capacity_wh"] == f.battery.capacity_wh
    seqs = [seq for seq, _, _ in ra.agent.outbox.after(0, 100_000)]
    assert seqs == list(range(1, len(seqs) + 1))  # one numbering, no gaps


async def test_targets_are_split_onto_the_devices_and_written(
    districts: Districts,
) -> None:
    site = districts.site
    ra = await districts.started()
    t = targets(ra, 1, battery_w=-25_000.0, pv_w=30_000.0)
    assert ra.agent.on_targets(s.encode(t)) == "applied"
    row = ra.ctl.state.plan.frame.loc[pd.Timestamp(t.start)]
    bats = [b.id for b in site.batteries]
    assert sum(row[f"{b}.battery_w"] for b in bats) == pytest.approx(-25_000.0)
    for b in site.batteries:  # each within its own rating
        assert -b.max_charge_w - 1e-6 <= row[f"{b.id}.battery_w"] <= 0.0
    # Into the quarter hour the targets start: dispatch writes them to the plant.
    await ra.run_until(t.start + timedelta(minutes=1))
    assert float(ra.plant.bat_set.sum()) == pytest.approx(-25_000.0, abs=1.0)
    assert float(ra.plant.pv_limit_w.sum()) <= 30_000.0 + 1.0
    tele = sent(ra, "up/telemetry")[-1]
    assert (tele["plan_source"], tele["target_seq"]) == ("target", 1)


async def test_stale_duplicate_and_bad_targets_are_refused_and_reported(
    districts: Districts,
) -> None:
    ra = await districts.started()
    agent = ra.agent
    assert agent.on_targets(s.encode(targets(ra, 5, -10_000.0, 50_000.0))) == "applied"
    assert agent.on_targets(s.encode(targets(ra, 5, -10_000.0, 50_000.0))) == "duplicate"
    assert agent.on_targets(s.encode(targets(ra, 4, 10_000.0, 50_000.0))) == "refused"
    old = targets(ra, 6, 10_000.0, 50_000.0)
    expired = old.model_copy(
        update={
            "expires_at": ra.clock.now() - timedelta(seconds=1),
            "sent_at": ra.clock.now() - timedelta(minutes=20),
        }
    )
    assert agent.on_targets(s.encode(expired)) == "refused"
    assert agent.on_targets(b'{"schema": "vpp.city/1", "agent": "north"}') == "refused"
    assert agent.target is not None and agent.target.seq == 5
    acks = [
        (a["target_seq"], a["status"], str(a["reason"]).split(":")[0]) for a in sent(ra, "up/ack")
    ]
    assert acks == [(5, "applied", ""), (4, "refused", "out_of_order"),
                    (6, "refused", "expired"), (0, "refused", "invalid")]  # fmt: skip
    kinds = [e.kind for e in ra.ctl.state.events if e.source == "city"]
    assert kinds == ["target_out_of_order", "target_expired", "target_invalid"]
    # The last applied number survives a restart: seq 5 is not applied twice.
    agent.outbox.close()
    again = districts.make()
    assert again.agent.on_targets(s.encode(targets(ra, 5, -10_000.0, 50_000.0))) == "duplicate"


async def test_when_targets_expire_the_district_plans_alone(
    districts: Districts,
) -> None:
    ra = await districts.started()
    t = targets(ra, 1, battery_w=-30_000.0, pv_w=20_000.0, quarters=8, expires_q=1)
    assert ra.agent.on_targets(s.encode(t)) == "applied"
    await ra.run_until(t.expires_at + timedelta(minutes=1))
    assert ra.agent.target is None
    assert ra.agent.stats.fallbacks_total == 1
    tele = sent(ra, "up/telemetry")[-1]
    assert tele["plan_source"] == "local"
    # The quarter after the expiry follows the district's own plan, not the targets.
    row = ra.ctl.state.plan.frame.loc[pd.Timestamp(floor_quarter(ra.clock.now()))]
    local = ra.agent.local_plan.frame.loc[pd.Timestamp(floor_quarter(ra.clock.now()))]
    assert row["battery_w"] == pytest.approx(local["battery_w"])
    written = float(ra.plant.bat_set.sum())
    assert written == pytest.approx(local["battery_w"], abs=max(1.0, 0.05 * abs(written)))
    assert not np.isclose(written, -30_000.0)
