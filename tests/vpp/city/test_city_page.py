"""The coordinator's city page in headless Chromium: the substation's limits now, the
operator's signals and caps, and the events of what was set and refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.conftest import free_port
from tests.vpp.web.chromium import Chromium, require_chromium
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.link import LinkConfig
from vpp.city.run import city_app
from vpp.city.signals import EntryError

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.mark.timeout(120)
async def test_the_city_page_lists_signals_caps_and_events(tmp_path: Path) -> None:
    require_chromium()
    coord = Coordinator(
        CoordinatorConfig(["north", "south"], 2e6, 1e6),
        LinkConfig("127.0.0.1", 1, "coordinator", "-", "coordinator"),
        None,
        now=lambda: NOW,
    )
    await coord.add_signal({"id": "dso-7", "kind": "feed_in_pct", "feed_in_pct": 60,
                            "agents": ["north"], "start": NOW.isoformat(),
                            "reason": "<b>feeder 7</b>"}, "operator")  # fmt: skip
    earlier = (NOW - timedelta(minutes=5)).isoformat()
    await coord.add_cap({"id": "sub-1", "direction": "export", "limit_w": 4e5,
                         "start": earlier}, "operator")  # fmt: skip
    with pytest.raises(EntryError) as bad:
        await coord.add_cap({"id": "sub-2", "direction": "export", "limit_w": -1,
                             "start": NOW.isoformat()}, "operator")  # fmt: skip
    coord.refused("cap", bad.value, "operator")
    runner = web.AppRunner(city_app(coord, CollectorRegistry(), "secret"))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with Chromium(tmp_path) as browser:
            await browser.open(f"http://127.0.0.1:{port}/")
            rows = await browser.wait_for(
                "document.querySelectorAll('#s tr').length === 3 && "
                "[...document.querySelectorAll('#s tr')].map(r => r.textContent)",
                what="signals and caps listed",
            )
            assert "dso-7" in rows[1] and "north" in rows[1] and "<b>feeder 7</b>" in rows[1]
            assert "sub-1" in rows[2] and "400000" in rows[2]
            limits = await browser.evaluate("document.querySelector('#limits').textContent")
            assert "export 400,000 W" in limits and "1 caps in force" in limits
            events = await browser.evaluate(
                "[...document.querySelectorAll('#e li')].map(li => li.textContent)"
            )
            assert [e.split(" ")[1] for e in events] == [
                "signal_refused:", "cap_added:", "signal_added:"
            ]  # fmt: skip
            assert "limit_w: Input should be greater than or equal to 0" in events[0]
            assert not browser.errors
    finally:
        await runner.cleanup()
