"""A real Prometheus server on loopback for tests: it scrapes given targets and answers queries.

Usage (sync or from an async test; use the ``*_async`` methods while the scraped server runs
on the test's own event loop, so the loop is free to answer the scrapes)::

    with PrometheusServer(["127.0.0.1:9478"], tmp_path) as prom:
        await prom.wait_for_async('up{job="vpp"} == 1', timeout_s=20)
        series = await prom.query_async("vpp_device_up")

The binary is ``/usr/bin/prometheus`` from the Debian package ``prometheus`` (or the first
``prometheus`` on PATH). Without it :func:`require_prometheus` skips the test, except where the
environment variable CI is set: there it fails, so CI cannot pass by skipping.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest

from tests.conftest import LOOPBACK, free_port

DEBIAN_BINARY = "/usr/bin/prometheus"
#: Bounded waits, s: start-up until /-/ready, and a polite stop before kill.
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.2


def find_prometheus() -> str | None:
    """Path of the Prometheus server binary, or None."""
    if os.access(DEBIAN_BINARY, os.X_OK):
        return DEBIAN_BINARY
    return shutil.which("prometheus")


def require_prometheus() -> str:
    """The binary's path; skips the test without one (fails instead when CI is set)."""
    path = find_prometheus()
    if path is not None:
        return path
    reason = (
        f"Prometheus server not installed ({DEBIAN_BINARY} missing; apt-get install -y prometheus)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it, not skip these tests")
    pytest.skip(reason)


def scrape_config(targets: list[str], scrape_interval: str, metrics_path: str) -> dict[str, Any]:
    """A minimal prometheus.yml (JSON is valid YAML): one job ``vpp`` scraping ``targets``."""
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [
            {
                "job_name": "vpp",
                "metrics_path": metrics_path,
                "static_configs": [{"targets": targets}],
            }
        ],
    }


class PrometheusServer:
    """Prometheus scraping ``targets`` ("host:port") every ``scrape_interval``, on loopback.

    Its config, data and log live under ``tmp_path``. Leaving the ``with`` block (also on
    errors) terminates the process, and kills it after STOP_TIMEOUT_S.
    """

    def __init__(
        self,
        targets: list[str],
        tmp_path: Path,
        scrape_interval: str = "1s",
        *,
        metrics_path: str = "/metrics",
        binary: str | None = None,
    ) -> None:
        self.binary = binary or require_prometheus()
        self.dir = Path(tmp_path) / "prometheus"
        self.config = scrape_config(targets, scrape_interval, metrics_path)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "prometheus.log"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the process and wait until it reports ready (bounded)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        config.write_text(json.dumps(self.config, indent=2), encoding="utf-8")
        self.port = free_port()
        args = [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the handle
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(POLL_S)
        raise TimeoutError(f"prometheus not ready within {READY_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate, then kill if it does not stop in time (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- HTTP API, blocking (for targets that do not run on the caller's event loop) ---------

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query: the result vector, e.g. ``[{"metric": {...}, "value": [t, "1"]}]``."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=5.0) as resp:
                return _result(json.load(resp), expr)
        except urllib.error.HTTPError as exc:  # a bad expression: the body says why
            return _result(json.load(exc), expr)

    def wait_for(self, expr: str, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns a series; TimeoutError with the targets' state."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.query(expr)
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(self._timeout_message(expr, timeout_s, self.targets()))
            time.sleep(POLL_S)

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with health and last error (for failure messages)."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5.0) as resp:
            return list(json.load(resp)["data"]["activeTargets"])

    # -- HTTP API, async (while the scraped server runs on the caller's loop) -----------------

    async def query_async(self, expr: str) -> list[dict[str, Any]]:
        """:meth:`query` without blocking the event loop."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0)) as session:
            return await self._query(session, expr)

    async def wait_for_async(self, expr: str, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        """:meth:`wait_for` without blocking the event loop."""
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0)) as session:
            while True:
                found = await self._query(session, expr)
                if found:
                    return found
                if time.monotonic() > deadline:
                    async with session.get(f"{self.url}/api/v1/targets") as resp:
                        targets = (await resp.json())["data"]["activeTargets"]
                    raise TimeoutError(self._timeout_message(expr, timeout_s, targets))
                await asyncio.sleep(POLL_S)

    async def _query(self, session: aiohttp.ClientSession, expr: str) -> list[dict[str, Any]]:
        async with session.get(f"{self.url}/api/v1/query", params={"query": expr}) as resp:
            return _result(await resp.json(), expr)

    def _timeout_message(self, expr: str, timeout_s: float, targets: list[dict[str, Any]]) -> str:
        state = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in targets]
        return f"no series for {expr!r} within {timeout_s} s; targets: {state}"


def _result(payload: dict[str, Any], expr: str) -> list[dict[str, Any]]:
    if payload.get("status") != "success":
        raise RuntimeError(f"query {expr!r} failed: {payload.get('error', payload)}")
    return list(payload["data"]["result"])
