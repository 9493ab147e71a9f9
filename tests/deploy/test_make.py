"""``make run`` passes a site file and extra options through to ``vpp run``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(*variables: str) -> list[str]:
    """The commands ``make -n run`` would execute (nothing is run)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    result = subprocess.run(
        [make, "-n", "--no-print-directory", "run", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line.rstrip() for line in result.stdout.splitlines() if "vpp run" in line]


def test_make_run_takes_a_site_file_and_arguments() -> None:
    [line] = dry_run("CONFIG=sites/north.toml", "ARGS=--http-port 9400 --dry-run")
    assert line.endswith("vpp run --config sites/north.toml --http-port 9400 --dry-run")


def test_make_run_defaults_to_the_demo_site() -> None:
    [line] = dry_run()
    assert line.endswith("vpp run --config config/demo.toml")
