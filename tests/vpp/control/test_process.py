"""``vpp run`` as a real process: survives kill -9 without losing recorded rows, resumes its
plan, and is scraped by a real Prometheus server."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port, free_ports
from tests.prometheus import PrometheusServer, require_prometheus
from vpp.metrics import HISTOGRAMS, SPECS

ROOT = Path(__file__).resolve().parents[3]
TABLES = ("polls", "snapshots", "plans", "setpoints", "events")


def site_file(tmp_path: Path) -> Path:
    """The demo district on free loopback ports."""
    text = (ROOT / "config" / "demo.toml").read_text()
    old = sorted({int(p) for p in re.findall(r"port = (15\d\d\d)", text)})
    for before, after in zip(old, free_ports(len(old)), strict=True):
        text = text.replace(f"port = {before},", f"port = {after},")
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


@contextmanager
def controller(site: Path, db: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [
        sys.executable,
        "-m",
        "vpp",
        "run",
        "--config",
        str(site),
        "--speed",
        "60",
        "--db",
        str(db),
        "--http-port",
        str(port),
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


def wait_until(check: object, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; log:\n{log.read_text()[-3000:]}")


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


@pytest.mark.slow
def test_kill_9_loses_nothing_and_the_restart_resumes(tmp_path: Path) -> None:
    site, db, port, log = (
        site_file(tmp_path),
        tmp_path / "vpp.sqlite",
        free_port(),
        tmp_path / "log",
    )
    with controller(site, db, port, log) as proc:
        wait_until(lambda: (metric(port, "vpp_plans_total") or 0) >= 2, 60, "two plans", log)
        before = counts(db)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert all(before[t] > 0 for t in ("polls", "plans", "setpoints")), before
    with controller(site, db, port, log) as proc:
        wait_until(lambda: metric(port, "vpp_plans_total") is not None, 60, "restart", log)
        after = counts(db)
        assert all(after[t] >= before[t] for t in TABLES), (before, after)
        with sqlite3.connect(db) as conn:
            kinds = [r[0] for r in conn.execute("select kind from events")]
            assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert "plan_restored" in kinds
        # The operator page's chart starts with the recorded quarter hours, not empty.
        assert "recorded quarter hours read back" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


@pytest.mark.slow
def test_prometheus_scrapes_every_documented_metric(tmp_path: Path) -> None:
    require_prometheus()
    site, db, port, log = (
        site_file(tmp_path),
        tmp_path / "vpp.sqlite",
        free_port(),
        tmp_path / "log",
    )
    with (
        controller(site, db, port, log) as proc,
        PrometheusServer([f"127.0.0.1:{port}"], tmp_path / "prom") as prom,
    ):
        wait_until(lambda: (metric(port, "vpp_plans_total") or 0) >= 1, 60, "a plan", log)
        prom.wait_for("vpp_plans_total >= 1", timeout_s=30)
        prom.wait_for('vpp_job_runs_total{task="dispatch"} >= 1', timeout_s=30)
        missing = []
        for spec in SPECS:
            if spec.name == "vpp_plan_objective_euros":
                continue  # absent by design while a fallback plan is in force
            name = f"{spec.name}_total" if spec.type == "counter" else spec.name
            if not prom.query(name):
                missing.append(name)
        missing += [h.name for h in HISTOGRAMS if not prom.query(f"{h.name}_count")]
        assert not missing, f"no series for {missing}"
        up = prom.query('vpp_fleet_devices{state="online"}')
        assert sum(float(s["value"][1]) for s in up) == 88
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
