"""The Debian tools that check the deployment files, found or skipped (failed in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "config" / "deploy"
DASHBOARDS = ROOT / "dashboards"


def require_tool(name: str, package: str) -> str:
    """Path of ``name`` (``/usr/bin`` first, then PATH). Without it the test is skipped,
    except where the environment variable CI is set: there it fails, so CI cannot pass by
    skipping (``.ci/run`` installs ``package``)."""
    debian = Path("/usr/bin") / name
    path = str(debian) if os.access(debian, os.X_OK) else shutil.which(name)
    if path is not None:
        return path
    reason = f"{name} not installed (apt-get install -y {package})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it, not skip these tests")
    pytest.skip(reason)


def run_tool(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a checker (bounded), capturing its output."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
