"""A small district and two sample days of the shipped 2018 data, replayed once per session."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest

from vpp.core.site import Site
from vpp.replay.data import read_replay_inputs
from vpp.replay.parallel import make_jobs, run_jobs
from vpp.replay.runner import DayResult, ReplayOptions

#: A spring working day (PV surplus at noon, no boiler) and a winter one (boiler needed).
SAMPLE_DAYS = (date(2018, 5, 16), date(2018, 1, 10))


def small_site(**optimizer: Any) -> Site:
    """Two inverters, two batteries, a data centre with its heat pump, a store and a boiler."""

    def dev(i: int, **kw: Any) -> dict[str, Any]:
        return {"modbus": {"port": 16100, "unit": i + 1}, **kw}

    return Site.model_validate(
        {
            "site": {"name": "small test district"},
            "grid": {
                "import_limit_w": 300_000,
                "export_limit_w": 200_000,
                "meter": "meter",
                "base_load_annual_wh": 300e6,
                "base_load_peak_w": 90_000,
            },
            "heat": {
                "store_capacity_wh": 2e6,
                "store_max_charge_th_w": 2e5,
                "store_max_discharge_th_w": 2e5,
                "boiler_max_th_w": 6e5,
                "annual_demand_wh": 1.2e9,
            },
            "optimizer": {"horizon_h": 24, **optimizer},
            "devices": [
                dev(0, id="pv-1", kind="pv", rated_w=60_000, peak_wp=66_000),
                dev(1, id="pv-2", kind="pv", rated_w=40_000, peak_wp=44_000, azimuth_deg=90),
                dev(
                    2,
                    id="bat-1",
                    kind="battery",
                    capacity_wh=60_000,
                    max_charge_w=30_000,
                    max_discharge_w=30_000,
                ),
                dev(
                    3,
                    id="bat-2",
                    kind="battery",
                    capacity_wh=20_000,
                    max_charge_w=10_000,
                    max_discharge_w=10_000,
                    soc_initial_pct=30,
                ),
                dev(4, id="meter", kind="meter"),
                dev(5, id="dc", kind="datacentre", it_power_w=100_000),
                dev(6, id="hp", kind="heat_pump", max_el_w=30_000, min_part_load_pct=20),
            ],
        }
    )


@pytest.fixture(scope="session")
def site() -> Site:
    return small_site()


@pytest.fixture(scope="session")
def data(site: Site) -> pd.DataFrame:
    """Raw inputs around both sample days (history and horizon included)."""
    first, last = min(SAMPLE_DAYS), max(SAMPLE_DAYS)
    return read_replay_inputs(site, first, last)


@pytest.fixture(scope="session")
def sample(site: Site, data: pd.DataFrame) -> dict[date, DayResult]:
    """Both sample days replayed whole, in two worker processes, traces kept."""
    jobs = make_jobs(site, data, SAMPLE_DAYS, ReplayOptions(keep_traces=True))
    return {r.day: r for r in run_jobs(jobs, workers=2)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``pytest -n`` (pytest-xdist, ``--dist loadgroup``) the tests that share the
    replayed sample days run in one worker, so the days are replayed once, not once per worker."""
    for item in items:
        if "sample" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("replay-sample"))
