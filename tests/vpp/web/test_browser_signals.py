"""The operator page lists grid-operator signals and their compliance: a live demo
controller, a signal set through the API, headless Chromium reading the page."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp

from tests.vpp.web.live import demo_site
from tests.vpp.web.page import OpenPage, js_text

TOKEN = "signals-page-token"
START = datetime(2026, 6, 21, 9, 0, tzinfo=UTC)


async def test_the_page_lists_an_operator_signal_with_its_compliance(
    operator_page: OpenPage, http: aiohttp.ClientSession
) -> None:
    site = demo_site(token=TOKEN)
    page = await operator_page(site, START)
    ctl, browser, url = page.ctl, page.browser, page.url
    await browser.wait_for(js_text("#signals-none:not(.hidden)"), what="empty list shown")
    body = {"kind": "feed_in_pct", "feed_in_pct": 60.0, "reason": "transformer T4 hot"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.post(f"{url}/api/signals", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        ident = (await resp.json())["signal"]["id"]
    row = f'#signals tr[data-signal="{ident}"]'
    text = await browser.wait_for(js_text(row), what="signal listed")
    assert "operator" in text and "feed-in 60 %" in text and "transformer T4 hot" in text
    await browser.wait_for(f"{js_text(row)}.includes('compliant')", what="compliance shown")
    assert await browser.evaluate(js_text("#signals-compliance")) == "compliant"
    assert ctl.state.grid_signals is not None and ctl.state.grid_signals.active
    assert browser.errors == []
