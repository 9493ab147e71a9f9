"""The operator page lists grid-operator signals and their compliance: a live demo
controller, a signal set through the API, headless Chromium reading the page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.vpp.web.chromium import Chromium, require_chromium
from tests.vpp.web.live import demo_site, running_controller

TOKEN = "signals-page-token"
START = datetime(2026, 6, 21, 9, 0, tzinfo=UTC)


def js_text(selector: str) -> str:
    return f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"


async def test_the_page_lists_an_operator_signal_with_its_compliance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_chromium()
    monkeypatch.delenv("VPP_API_TOKEN", raising=False)
    site = demo_site(token=TOKEN)
    async with (
        running_controller(site, tmp_path / "vpp.sqlite", start=START) as (ctl, url),
        Chromium(tmp_path) as browser,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        await browser.open(f"{url}/")
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
