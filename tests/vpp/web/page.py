"""The operator page in headless Chromium, served by a demo controller running in-process:
what the browser tests share (the ``operator_page`` fixture of ``conftest.py`` opens one)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from tests.vpp.web.chromium import Chromium
from tests.vpp.web.live import running_controller
from vpp.control.controller import Controller
from vpp.core.site import Site


def js_text(selector: str) -> str:
    """JavaScript for the text of the first element matching ``selector`` (or '')."""
    return f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"


@dataclass
class OperatorPage:
    """The page loaded in the browser, the controller behind it and its base URL."""

    site: Site
    ctl: Controller
    url: str
    browser: Chromium


class OpenPage(Protocol):
    async def __call__(
        self, site: Site, start: datetime, *, simulate: bool = True
    ) -> OperatorPage: ...


@asynccontextmanager
async def operator_page(
    tmp_path: Path, site: Site, start: datetime, *, simulate: bool = True
) -> AsyncIterator[OperatorPage]:
    """Run ``site`` from ``start`` (as :func:`~tests.vpp.web.live.running_controller`) and
    open its page in Chromium; closes the browser, then stops the controller."""
    async with (
        running_controller(site, tmp_path / "vpp.sqlite", start=start, simulate=simulate) as (
            ctl,
            url,
        ),
        Chromium(tmp_path) as browser,
    ):
        await browser.open(f"{url}/")
        yield OperatorPage(site, ctl, url, browser)
