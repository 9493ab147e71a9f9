"""The operator page's views of stored energy, heat and prices, its reasons ("why"), and its
header when nothing can be controlled, in headless Chromium against a running controller.

Values on the page are checked against what the page was sent (the API), and the screenshots
are checked for the series' colours inside each chart, so a chart that draws nothing fails.
Screenshots are kept in ``tests/artifacts/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.vpp.web.chromium import Chromium
from tests.vpp.web.live import demo_site
from tests.vpp.web.page import OpenPage

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
#: A May morning: batteries and PV have something to show, and the heat pump runs at what
#: the waste heat allows all day (in June it runs in bursts that the plan places where the
#: day's prices and CO2 put them, in the chart's window or not).
START = datetime(2026, 5, 21, 7, 0, tzinfo=UTC)
CHARTS = ("chart-soc", "chart-heat", "chart-price")
#: Series colours of app.css, RGB.
BATTERY, HEAT_PUMP, IMPORT_PRICE, BAD = (46, 139, 87), (210, 87, 30), (31, 95, 168), (179, 38, 30)


def pixels_like(shot: Path, box: dict[str, float], rgb: tuple[int, int, int], tol: int = 30) -> int:
    """Pixels within ``box`` (CSS px, page coordinates) whose colour is near ``rgb``."""
    with Image.open(shot) as img:
        crop = img.convert("RGB").crop(
            (int(box["x"]), int(box["y"]), int(box["x"] + box["w"]), int(box["y"] + box["h"]))
        )
        return sum(
            1
            for px in crop.get_flattened_data()
            if all(abs(int(c) - ref) <= tol for c, ref in zip(px, rgb, strict=True))
        )


async def boxes(browser: Chromium, ids: tuple[str, ...]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = await browser.evaluate(
        "Object.fromEntries(" + repr(list(ids)) + ".map(id => { const r = "
        "document.getElementById(id).getBoundingClientRect(); return [id, {x: r.x + "
        "window.scrollX, y: r.y + window.scrollY, w: r.width, h: r.height}]; }))"
    )
    return found


async def test_stored_energy_heat_prices_and_why(operator_page: OpenPage) -> None:
    site = demo_site()
    browser = (await operator_page(site, START)).browser
    ready = " && ".join(f"document.getElementById('{c}').dataset.ready === 'true'" for c in CHARTS)
    await browser.wait_for(ready, what="views drawn")
    # What the page drew, and what it was sent (one refresh: same objects).
    seen: dict[str, Any] = await browser.evaluate(
        "({series: Object.fromEntries(" + repr(list(CHARTS)) + ".map(id => [id, "
        "[...document.querySelectorAll('#' + id + ' path')].map(p => p.dataset.series)])),"
        " dots: Object.fromEntries([...document.querySelectorAll('circle[data-measured]')]"
        ".map(c => [c.closest('svg').id + ':' + c.dataset.measured, +c.dataset.value])),"
        " status: page.status, plan: page.plan,"
        " why: [...document.querySelectorAll('#why tbody tr')].map(r => [r.dataset.start,"
        " r.cells[2].textContent]),"
        " whyNow: document.getElementById('why-now').textContent,"
        " health: document.getElementById('control-state').dataset.health,"
        " header: document.querySelector('header').textContent})"
    )
    assert set(seen["series"]["chart-soc"]) == {"soc", "store"}
    assert set(seen["series"]["chart-heat"]) == {"demand", "hp", "boiler", "waste"}
    assert set(seen["series"]["chart-price"]) == {"imp", "exp"}
    plan, fleet = seen["plan"], seen["status"]["fleet"]
    soc = [100 * s["battery_soc_wh"] / plan["battery_capacity_wh"] for s in plan["steps"]]
    assert all(-0.5 <= v <= 100.5 for v in soc) and max(soc) - min(soc) > 1.0
    assert seen["dots"]["chart-soc:s-soc"] == pytest.approx(
        100 * fleet["battery_soc_ratio"], abs=0.06
    )
    assert 0 < seen["dots"]["chart-soc:s-soc"] < 100
    assert seen["dots"]["chart-heat:s-hp"] == pytest.approx(
        fleet["heat_pump_th_w"] / 1000, abs=0.06
    )
    assert all(s["heat_demand_th_w"] > 0 for s in plan["steps"])
    prices = [s["price_import_eur_per_mwh"] for s in plan["steps"]]
    assert max(prices) - min(prices) > 10  # a day's spread, as the data has it

    # Why: one row where the reason changes, each the reason the API gives for its step.
    by_start = {s["start"]: s["why"] for s in plan["steps"]}
    assert len(seen["why"]) >= 2
    for start, text in seen["why"]:
        assert text == by_start[start] and text
    assert seen["whyNow"] == "Now: " + seen["status"]["plan"]["why"]["text"]
    # an optimal plan's reasons come from the solver's duals, in the API as on the page
    assert seen["status"]["plan"]["why"]["source"] == "duals"
    assert {s["why_source"] for s in plan["steps"]} == {"duals"}
    assert any(
        word in text
        for _, text in seen["why"]
        for word in ("charging", "discharging", "curtailed", "heat pump", "boiler", "store")
    ), seen["why"]
    rows = await browser.evaluate(
        "[...document.querySelectorAll('#devices tbody tr')].map(r => [r.dataset.device,"
        " r.cells[9].textContent])"
    )
    why_now = seen["status"]["plan"]["why"]
    for device, text in rows:
        kind = next(d.kind for d in site.devices if d.id == device)
        expected = {"battery": why_now["battery"], "pv": why_now["pv"]}.get(str(kind))
        if str(kind) in ("battery", "pv"):
            assert text == (expected or ""), (device, text)

    assert seen["health"] in ("ok", "degraded") and "NOT CONTROLLING" not in seen["header"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = await browser.screenshot(ARTIFACTS / "operator_views.png")
    where = await boxes(browser, CHARTS)
    assert pixels_like(shot, where["chart-soc"], BATTERY) > 100
    assert pixels_like(shot, where["chart-heat"], HEAT_PUMP) > 100
    assert pixels_like(shot, where["chart-price"], IMPORT_PRICE) > 100
    assert browser.errors == []


async def test_every_device_offline_is_not_controlling_on_the_page(operator_page: OpenPage) -> None:
    site = demo_site(n_pv=3, n_battery=2)
    page = await operator_page(site, START, simulate=False)
    ctl, browser = page.ctl, page.browser
    await browser.wait_for(
        "document.getElementById('control-state').dataset.health === 'not_controlling'",
        what="not controlling shown",
    )
    header = await browser.evaluate("document.querySelector('header').textContent")
    assert "NOT CONTROLLING: no controllable device answers" in header
    assert "control active" not in header and "plan optimal" not in header
    reasons = await browser.evaluate(
        "[...document.querySelectorAll('#health-reasons li')].map(li => li.textContent)"
    )
    assert reasons[0].startswith("no controllable device answers (0 of ")
    assert any(
        r.startswith(f"{len(site.devices)} of {len(site.devices)} devices offline") for r in reasons
    )
    await browser.wait_for(
        "document.querySelector('#alerts li[data-alert=VppDevicesOffline]') !== null",
        what="grouped offline alert",
    )
    alerts = await browser.evaluate(
        "[...document.querySelectorAll('#alerts li')].map(li => li.dataset.alert)"
    )
    assert alerts.count("VppDevicesOffline") == 1 and alerts.count("VppGridMeterOffline") == 1
    assert "VppDeviceOffline" not in alerts
    assert ctl.state.plan is not None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = await browser.screenshot(ARTIFACTS / "operator_not_controlling.png")
    where = await boxes(browser, ("control-state",))
    box = where["control-state"]
    assert pixels_like(shot, box, BAD) > 0.5 * box["w"] * box["h"]
    assert browser.errors == []
