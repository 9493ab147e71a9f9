"""The operator API as a signal source: a real controller with its web server, simulated
devices on loopback. A signal set over the API is enforced on the devices at once, listed
with its compliance, refused with a clear error when bad (changing nothing), and revoked."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.vpp.web.plant import TOKEN, Plant, call
from vpp.web.signals import DESK_KEY


def pv_cap_w(plant: Plant, device_id: str) -> float:
    device = plant.fleet.device(device_id)
    state = device.state
    pct = state.limit_setting_pct if state.limit_enabled else 100.0
    return float(pct) / 100.0 * float(device.config.rated_w)


def body(**changes: Any) -> dict[str, Any]:
    return {"kind": "feed_in_pct", "feed_in_pct": 30.0, "reason": "feeder overload"} | changes


async def test_an_operator_signal_is_enforced_at_once_listed_and_revoked(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    site = plant.state.site
    feeder = site.pv[0].feeder
    on_feeder = [p for p in site.pv if p.feeder == feeder]
    others = [p for p in site.pv if p.feeder != feeder]
    status, reply = await call(http, "POST", f"{plant.url}/api/signals", body(feeder=feeder))
    assert status == 201, reply
    ident = reply["signal"]["id"]
    await plant.app[DESK_KEY].wait_idle()
    for pv in on_feeder:
        assert pv_cap_w(plant, pv.id) <= 0.3 * pv.rated_w + 1.0
    for pv in others:
        assert pv_cap_w(plant, pv.id) > 0.3 * pv.rated_w + 1.0
    status, listed = await call(http, "GET", f"{plant.url}/api/signals", token=None)
    assert status == 200
    [shown] = listed["signals"]
    assert shown["id"] == ident and shown["active"] and shown["source"] == "operator"
    takes = ("pv", "battery", "heat_pump")
    assert shown["devices"] == sorted(
        d.id for d in site.devices if d.feeder == feeder and d.kind.value in takes
    )
    compliance = listed["compliance"]
    assert compliance["compliant"] is True
    assert {p.id: compliance["devices"][p.id] for p in on_feeder} == dict.fromkeys(
        (p.id for p in on_feeder), "compliant"
    )
    kinds = [e.kind for e in plant.state.events if e.source == "operator"]
    assert kinds == ["signal_set"]
    # Revoked: the plan's caps again at once.
    status, reply = await call(http, "DELETE", f"{plant.url}/api/signals/{ident}")
    assert status == 200 and reply["revoked"]["id"] == ident
    await plant.app[DESK_KEY].wait_idle()
    assert plant.state.grid_signals.bounds == {}
    status, reply = await call(http, "DELETE", f"{plant.url}/api/signals/{ident}")
    assert status == 404


async def test_bad_signals_get_a_clear_error_and_change_nothing(
    plant: Plant, http: aiohttp.ClientSession
) -> None:
    url = f"{plant.url}/api/signals"
    status, reply = await call(http, "POST", url, body(), token=None)
    assert status == 401
    status, reply = await call(http, "POST", url, body(), token="wrong")
    assert status == 401
    cases = [
        (body(feed_in_pct=130.0), "feed_in_pct"),
        (body(feed_in_pct=None), "feed_in_pct"),
        (body(kind="import_cap", feed_in_pct=None), "limit_w"),
        (body(devices=["pv-999"]), "devices"),
        (body(feeder="nowhere"), "feeder"),
        (body(kind="dim"), "kind"),
        (body(start="2026-06-21T12:00:00"), "start"),  # no zone
        (body(end="2030-01-01T00:00:00Z"), "end"),  # too far out
    ]
    for sent, field in cases:
        status, reply = await call(http, "POST", url, sent)
        assert status == 400, (sent, reply)
        assert reply["field"] == field, (sent, reply)
    watch = plant.ctl.signal_watch
    assert watch is None or not watch.extra
    assert not [e for e in plant.state.events if e.source == "operator"]
    status, reply = await call(http, "DELETE", f"{url}/not-an-id")
    assert status == 400 and reply["field"] == "id"
    assert TOKEN
