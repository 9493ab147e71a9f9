"""Every batch a writer reported as committed survives a kill -9 of the writer."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.vpp.recorder.helpers import T0, fleet_snapshot
from vpp.recorder import Recorder

REPO = Path(__file__).resolve().parents[3]
CHILD = Path(__file__).with_name("writer_child.py")
N_DEVICES = 200


def run_and_kill(db: Path, first: int, n_reported: int, deadline_s: float = 20.0) -> list[int]:
    """Start a writer at batch ``first``, read until it reported ``n_reported`` batches (or the
    deadline), SIGKILL it and return the batch numbers it reported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(first), str(N_DEVICES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    reported: list[int] = []
    buffer = b""
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            end = time.monotonic() + deadline_s
            while len(reported) < n_reported and time.monotonic() < end:
                if not sel.select(timeout=max(0.0, end - time.monotonic())):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break  # the child exited
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                reported += [int(line) for line in lines if line.strip()]
        # Killed while it keeps writing: most likely in the middle of a transaction.
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()
    assert len(reported) >= n_reported, f"child reported {reported}: {stderr.decode()}"
    return reported


@pytest.mark.slow
def test_reported_batches_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "kill.sqlite"
    reported: list[int] = []
    for first in (0, 1000, 2000):  # three kills, each reopening what the last one left
        reported += run_and_kill(db, first, n_reported=15)
    with Recorder(db) as rec:
        assert rec.integrity_check() == ["ok"]
        frame = rec.snapshots_frame(T0, T0 + timedelta(days=1))
        events = rec.events(limit=None)
        last = rec.last_snapshot()
    per_poll = frame.groupby("time")["device"].count()
    # No torn batch: every poll in the file is complete...
    assert (per_poll == N_DEVICES).all()
    # ...and every batch reported as committed is there, with its event.
    times = {T0 + timedelta(seconds=10 * b) for b in reported}
    assert times <= {t.to_pydatetime() for t in per_poll.index}
    assert {f"batch {b}" for b in reported} <= set(events["message"])
    # The last poll reads back exactly as written (it may be one the child had no time to report).
    assert last is not None
    batch = round((last.time - T0).total_seconds() / 10)
    assert batch >= max(reported)
    assert last == fleet_snapshot(last.time, N_DEVICES, seed=batch)
