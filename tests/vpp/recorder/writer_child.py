"""Child process of the kill -9 test: records polls in a loop and prints each committed one.

Usage: python writer_child.py DB FIRST_BATCH N_DEVICES. Runs until killed (or 100,000
batches); prints the batch number only after record_snapshot and record_event returned.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from tests.vpp.recorder.helpers import T0, fleet_snapshot
from vpp.recorder import Recorder


def main(db: Path, first: int, n_devices: int) -> None:
    with Recorder(db) as rec:
        for batch in range(first, first + 100_000):
            at = T0 + timedelta(seconds=10 * batch)
            rec.record_snapshot(fleet_snapshot(at, n_devices, seed=batch))
            rec.record_event(
                "info", "child", "batch", f"batch {batch}", time=at, data={"batch": batch}
            )
            print(batch, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
