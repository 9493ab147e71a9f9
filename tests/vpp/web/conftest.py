"""Fixtures of the web tests: a running controller with its web server, an HTTP client, the
operator page in headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from tests.vpp.web.chromium import require_chromium
from tests.vpp.web.page import OpenPage, OperatorPage, operator_page
from tests.vpp.web.plant import TOKEN, Plant, start_plant
from vpp.core.site import Site


@pytest.fixture
async def plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Plant]:
    monkeypatch.delenv("VPP_API_TOKEN", raising=False)
    async with start_plant(tmp_path, TOKEN) as p:
        yield p


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture(name="operator_page")
async def operator_page_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OpenPage]:
    """Opens the operator page of a site run from a start time (once per test); skips without
    Chromium locally, fails without it in CI. Everything is stopped at the end of the test."""
    require_chromium()
    monkeypatch.delenv("VPP_API_TOKEN", raising=False)
    async with AsyncExitStack() as stack:

        async def open_page(site: Site, start: datetime, *, simulate: bool = True) -> OperatorPage:
            return await stack.enter_async_context(
                operator_page(tmp_path, site, start, simulate=simulate)
            )

        yield open_page
