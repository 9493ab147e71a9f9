"""The operator page in headless Chromium, served by a running demo controller.

A real controller (simulated fleet over Modbus, planner, recorder, scheduler, HTTP server)
runs in-process at 60x speed; the browser loads the page, waits for the chart, sets an import
cap through the form and the test checks that the next plan carries it. The screenshot is kept
at ``tests/artifacts/operator_page.png``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.vpp.web import chromium
from tests.vpp.web.chromium import require_chromium
from tests.vpp.web.live import demo_site, wait_until
from tests.vpp.web.page import OpenPage, js_text
from vpp.web.views import cap_id, iso

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOKEN = "page-test-token"
#: A June morning: PV, batteries and the heat pump all have something to show.
START = datetime(2026, 6, 21, 7, 0, tzinfo=UTC)
CAP_KW = 150


async def test_page_draws_and_a_cap_set_on_it_reaches_the_next_plan(
    operator_page: OpenPage,
) -> None:
    site = demo_site(token=TOKEN)
    page = await operator_page(site, START)
    ctl, browser = page.ctl, page.browser
    await browser.wait_for(
        "document.querySelector('#chart').dataset.ready === 'true'", what="chart drawn"
    )
    assert await browser.evaluate(js_text("#site-name")) == site.site.name
    series = await browser.evaluate(
        "[...document.querySelectorAll('#chart path')].map(p => p.dataset.series)"
    )
    assert {"planned", "imp", "exp", "pv", "battery"} <= set(series)
    assert (
        await browser.evaluate(
            "document.querySelector('#chart path[data-series=planned]').getAttribute('d')"
            ".split('L').length"
        )
        > 20
    )
    assert await browser.evaluate("document.querySelectorAll('#devices tbody tr').length") == len(
        site.devices
    )

    # A wrong token is refused and nothing changes.
    await browser.type_text("#token", "not-the-token")
    await browser.type_text("#cap-limit", str(CAP_KW))
    await browser.type_text("#cap-reason", "feeder F2 maintenance")
    await browser.click("#cap-submit")
    refused = await browser.wait_for(js_text("#action-result.err"), what="refusal shown")
    assert "401" in refused and ctl.state.caps == []

    made_before = ctl.state.plan_created_at
    assert made_before is not None
    await browser.type_text("#token", TOKEN)
    await browser.click("#cap-submit")
    done = await browser.wait_for(js_text("#action-result.ok"), what="cap confirmed")
    assert f"import cap of {CAP_KW} kW" in done
    [cap] = ctl.state.caps
    assert (cap.direction, cap.limit_w, cap.reason) == (
        "import",
        CAP_KW * 1000.0,
        "feeder F2 maintenance",
    )
    assert cap.end - cap.start == pd.Timedelta(hours=2)
    assert any(e.source == "operator" and e.kind == "cap_set" for e in ctl.state.events)

    # The cap triggers a re-plan; the new plan's import limit is the cap in its window.
    await wait_until(
        lambda: ctl.state.plan_created_at is not None and ctl.state.plan_created_at > made_before,
        30,
        "no new plan",
    )
    assert ctl.state.plan is not None
    frame = ctl.state.plan.frame
    window = (frame.index >= cap.start) & (frame.index < cap.end)
    assert window.any()
    assert (frame.loc[window, "import_cap_w"] == CAP_KW * 1000.0).all()
    assert (frame.loc[~window, "import_cap_w"] == site.grid.import_limit_w).all()
    recorded = ctl.recorder.events()
    assert "cap_set" in set(recorded["kind"])

    # The page follows without a reload: the chart shows the new plan, the cap is listed.
    created = iso(ctl.state.plan_created_at)
    await browser.wait_for(
        f"document.querySelector('#chart').dataset.planCreated >= {json.dumps(created)}",
        what="chart redrawn with the new plan",
    )
    await browser.wait_for(
        f"document.querySelector('#caps tr[data-cap=\"{cap_id(cap)}\"]') !== null",
        what="cap listed",
    )
    assert await browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "page wider than window"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = await browser.screenshot(ARTIFACTS / "operator_page.png")
    assert shot.stat().st_size > 20_000
    assert browser.errors == []


def test_missing_chromium_skips_locally_but_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chromium, "DEBIAN_BINARY", "/nonexistent/chromium")
    monkeypatch.setattr(chromium.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_chromium()
