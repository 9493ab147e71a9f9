"""Running a fleet: the background physics task, a fleet in a child process, ``vpp simulate``."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path

from adapters.sim.fleet import SimFleet, run_fleet_process
from adapters.sim.synthetic import synthetic_site
from tests.adapters.sim.util import NOON, make_site, pv, scan_unit
from tests.conftest import free_ports
from vpp.core.clock import ScaledClock

ROOT = Path(__file__).resolve().parents[3]


async def test_background_task_steps_physics_with_a_scaled_clock() -> None:
    (port,) = free_ports(1)
    site = make_site([pv("pv-1", port, 1)])
    fleet = SimFleet(site, ScaledClock(NOON, speed=600), step_interval_s=0.05)
    energy = fleet.device("pv-1").state.energy_wh
    async with fleet:
        for _ in range(100):  # bounded: at most 5 s
            await asyncio.sleep(0.05)
            if fleet.environment.now >= NOON + timedelta(minutes=5):
                break
        found = await scan_unit(port, 1)
    assert fleet.environment.now >= NOON + timedelta(minutes=5)
    assert fleet.device("pv-1").state.energy_wh > energy
    assert found.model(103).values["W"] > 0


def test_fleet_in_a_child_process() -> None:
    (port,) = free_ports(1)
    site = synthetic_site(n_pv=3, n_batteries=2, base_port=port, units_per_port=10)
    with run_fleet_process(site, delay_s=0.001, timeout_s=60) as proc:
        assert proc.pid is not None
        found = asyncio.run(scan_unit(port, 5))
        assert found.model(1).values["SN"] == "bat-00002"
    assert not proc._process.is_alive()
    assert proc._process.exitcode == 0  # SIGTERM stopped the servers cleanly


def demo_toml(port: int) -> str:
    """A two-device site file (TOML inline tables must stay on one line)."""
    pv_line = (
        f'{{ id = "pv-1", kind = "pv", rated_w = 5000, modbus = {{ port = {port}, unit = 1 }} }}'
    )
    bat_line = (
        '{ id = "bat-1", kind = "battery", capacity_wh = 10000, max_charge_w = 5000, '
        f'max_discharge_w = 5000, control = "802", modbus = {{ port = {port}, unit = 2 }} }}'
    )
    return (
        f"devices = [\n  {pv_line},\n  {bat_line},\n]\n"
        '[site]\nname = "cli test"\n'
        "[grid]\nimport_limit_w = 100000\nexport_limit_w = 100000\n"
    )


async def test_cli_simulate_serves_until_interrupted(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = tmp_path / "site.toml"
    config.write_text(demo_toml(port))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vpp", "simulate", "--config", str(config), "--speed", "10",
        "--delay-ms", "2", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while not any("serving" in line for line in lines):
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, f"vpp simulate exited early: {lines}"
            lines.append(line)
        assert any(str(port) in line and "1-2" in line for line in lines)
        found = await scan_unit(port, 2)
        assert [m.id for m in found.models] == [1, 701, 702, 704, 802]
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "stopped" in out.decode()
