"""Fixtures of the web tests: a running controller with its web server, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.vpp.web.plant import TOKEN, Plant, start_plant


@pytest.fixture
async def plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Plant]:
    monkeypatch.delenv("VPP_API_TOKEN", raising=False)
    async with start_plant(tmp_path, TOKEN) as p:
        yield p


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
