"""The recorder: an embedded SQLite (WAL) store of what the controller saw and did.

Append-only tables of snapshots (one row per device per poll), plans, setpoints, events and
the external inputs known at the time; bounded by retention; a recorded day exports in the
replay's input schema. On start the controller reloads the last plan and snapshot from here.

    with Recorder("var/vpp.sqlite", retention_days=90) as rec:
        await asyncio.to_thread(rec.record_snapshot, snapshot)
        last = rec.last_plan()

See :mod:`vpp.recorder.store` for how the asyncio controller should call it,
:mod:`vpp.recorder.retention` for how the file stays bounded, and :mod:`vpp.recorder.backup`
for an online copy while the controller writes.
"""

from __future__ import annotations

from vpp.recorder.backup import BackupResult, backup
from vpp.recorder.db import SCHEMA_VERSION, RecorderError
from vpp.recorder.export import (
    FILLED_COLUMN,
    ExportError,
    ExportResult,
    PartialDayError,
    day_bounds,
    export_day,
    read_marks,
    write_day,
)
from vpp.recorder.retention import RetentionStats
from vpp.recorder.store import PlanLike, Recorder, SetpointRecord

__all__ = [
    "FILLED_COLUMN",
    "SCHEMA_VERSION",
    "BackupResult",
    "ExportError",
    "ExportResult",
    "PartialDayError",
    "PlanLike",
    "Recorder",
    "RecorderError",
    "RetentionStats",
    "SetpointRecord",
    "backup",
    "day_bounds",
    "export_day",
    "read_marks",
    "write_day",
]
