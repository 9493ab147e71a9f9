"""``vpp run`` builds its recorder from the site's ``[run]`` settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.vpp.web.live import demo_site
from vpp.app import RunOptions, build_controller, make_clock
from vpp.core.site import ConfigError, parse_site


async def test_recorder_keeps_snapshots_as_configured(tmp_path: Path) -> None:
    site = demo_site(n_pv=1, n_battery=1)
    site = site.model_copy(
        update={"run": site.run.model_copy(update={"snapshot_retention_days": 7.0})}
    )
    opts = RunOptions(db_path=str(tmp_path / "vpp.sqlite"), http_port=free_port())
    async with AsyncExitStack() as stack:
        ctl = await build_controller(site, make_clock(opts), opts, stack)
        assert ctl.recorder.snapshot_retention == timedelta(days=7)
        assert ctl.recorder.retention == timedelta(days=site.run.retention_days)


def test_snapshot_retention_cannot_outlast_retention() -> None:
    data = demo_site(n_pv=1, n_battery=1).model_dump(mode="json")
    data["run"].update(retention_days=30, snapshot_retention_days=60)
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert any(
        e.startswith("run.snapshot_retention_days: 60 days is longer than run.retention_days")
        for e in err.value.errors
    ), err.value.errors
