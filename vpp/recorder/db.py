"""The SQLite file: opening it, its pragmas, its schema and migrations, times as epoch ms.

Every timestamp is stored as an INTEGER of milliseconds since 1970-01-01 UTC (``*_ms``
columns): compact (6 bytes), ordered, and free of time-zone text. The view
``snapshot_rows`` shows snapshots with readable UTC times for ad-hoc SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vpp.data.schema import SCHEMA

#: Version written to ``PRAGMA user_version``; each step in :data:`MIGRATIONS` raises it by one.
SCHEMA_VERSION = 2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class RecorderError(Exception):
    """A recorder operation failed; the message names the file and the operation."""

    def __init__(self, path: Path | str, operation: str, cause: BaseException | str) -> None:
        self.path = str(path)
        self.operation = operation
        self.cause = cause
        super().__init__(f"{path}: {operation} failed: {cause}")


def to_ms(when: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime (floored to the ms).

    Raises ValueError for a naive datetime: the recorder stores UTC only and will not guess.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()}: the recorder needs UTC times")
    return (when - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """The UTC datetime of an epoch-ms value."""
    return _EPOCH + ms * _MS


_V1 = """
CREATE TABLE devices (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (id, kind)
);
CREATE TABLE polls (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    n_devices INTEGER NOT NULL
);
CREATE INDEX polls_time ON polls (time_ms);
-- Clustered on (poll, device): a poll's rows are contiguous, so writing a poll appends and
-- deleting old polls removes whole pages; no separate time index is needed. There is no
-- (device, time) index: long per-device histories are the metrics' job, and on the largest
-- table such an index would cost about 15 % more disk.
CREATE TABLE snapshots (
    poll INTEGER NOT NULL,
    device INTEGER NOT NULL,
    online INTEGER NOT NULL,
    read_at_ms INTEGER,
    power_w REAL,
    soc_pct REAL,
    energy_wh REAL,
    reading TEXT,
    health TEXT NOT NULL,
    PRIMARY KEY (poll, device)
) WITHOUT ROWID;
CREATE VIEW snapshot_rows AS
    SELECT p.time_ms,
           strftime('%Y-%m-%dT%H:%M:%fZ', p.time_ms / 1000.0, 'unixepoch') AS time_utc,
           d.id AS device, d.kind, s.online, s.read_at_ms, s.power_w, s.soc_pct,
           s.energy_wh, s.reading, s.health
    FROM snapshots s JOIN polls p ON p.id = s.poll JOIN devices d ON d.key = s.device;
CREATE TABLE plans (
    id INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    first_step_ms INTEGER,
    n_steps INTEGER NOT NULL,
    status TEXT,
    fallback_reason TEXT,
    objective_eur REAL,
    info TEXT NOT NULL,
    frame BLOB NOT NULL
);
CREATE INDEX plans_created ON plans (created_ms);
CREATE TABLE setpoints (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    device TEXT NOT NULL,
    quantity TEXT NOT NULL,
    requested REAL,
    written REAL,
    readback REAL,
    ok INTEGER NOT NULL,
    message TEXT NOT NULL,
    dry_run INTEGER NOT NULL
);
CREATE INDEX setpoints_time ON setpoints (time_ms);
CREATE INDEX setpoints_device ON setpoints (device, time_ms);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    device TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX events_time ON events (time_ms);
CREATE INDEX events_device ON events (device, time_ms) WHERE device IS NOT NULL;
-- One row per quarter hour; the input-schema columns are added by sync_input_columns.
CREATE TABLE inputs (
    time_ms INTEGER PRIMARY KEY,
    recorded_ms INTEGER NOT NULL
);
"""

#: Version 2: quarter-hour means of what export measures from the snapshots, kept when the
#: snapshots themselves are gone (``run.snapshot_retention_days``; see
#: :func:`vpp.recorder.export.roll_up`).
_V2 = """
CREATE TABLE measured (
    time_ms INTEGER PRIMARY KEY,
    polls INTEGER NOT NULL,
    grid_polls INTEGER NOT NULL,
    pv_kwp_share REAL,
    pv_w_per_kwp REAL,
    load_w_per_mwh_a REAL,
    it_load_ratio REAL,
    waste_heat_temp_c REAL
);
"""
#: Columns of ``measured`` after its time.
MEASURED_COLUMNS = (
    "polls",
    "grid_polls",
    "pv_kwp_share",
    "pv_w_per_kwp",
    "load_w_per_mwh_a",
    "it_load_ratio",
    "waste_heat_temp_c",
)

#: MIGRATIONS[v] turns schema version v into v + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    lambda conn: _script(conn, _V1),
    lambda conn: _script(conn, _V2),
)


def _script(conn: sqlite3.Connection, sql: str) -> None:
    # executescript() would COMMIT the open transaction; run statement by statement instead.
    code = "\n".join(ln for ln in sql.splitlines() if not ln.strip().startswith("--"))
    for statement in code.split(";"):
        if statement.strip():
            conn.execute(statement)


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open (or create) the database at ``path`` with the recorder's pragmas and schema.

    Raises sqlite3.Error (or RecorderError for a file from a newer version); the Recorder
    wraps it into RecorderError.
    """
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT), so one
    # write batch is exactly one transaction. One connection is shared by the controller's
    # threads under the Recorder's lock.
    conn = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        _configure(conn)
        _migrate(conn, path)
        sync_input_columns(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection) -> None:
    # Must precede the first table of a new file; freed pages then go on a free list that
    # PRAGMA incremental_vacuum can hand back to the file system (see retention.py).
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    # WAL: a commit appends to the -wal file; a reader (export, web page) never blocks the
    # writer. synchronous=NORMAL fsyncs at checkpoints, not at every commit: a committed
    # transaction is in the OS page cache when COMMIT returns and survives a kill -9 of the
    # process; only a power cut or kernel crash can lose the last few commits (the file stays
    # consistent). Losing a few seconds of records on power loss is acceptable here, whereas
    # FULL would fsync on every 10-second poll for months (SSD wear and latency spikes).
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = NORMAL")
    # Keep the -wal file from staying large after a big retention batch.
    conn.execute("PRAGMA journal_size_limit = 67108864")
    conn.execute("PRAGMA cache_size = -16384")  # 16 MiB
    conn.execute("PRAGMA foreign_keys = OFF")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise RecorderError(
            path,
            "open",
            f"schema version {version} is newer than this program's "
            f"({SCHEMA_VERSION}); upgrade vpp or use another file",
        )
    if version == SCHEMA_VERSION:
        return  # nothing to write: a reader opening a live file takes no write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in MIGRATIONS[version:]:
            step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def input_columns(conn: sqlite3.Connection) -> list[str]:
    """The input-schema columns the ``inputs`` table has, in table order."""
    names = [str(row[1]) for row in conn.execute("PRAGMA table_info(inputs)")]
    return [n for n in names if n not in ("time_ms", "recorded_ms")]


def sync_input_columns(conn: sqlite3.Connection) -> None:
    """Add a REAL column for each input-schema column the table lacks (the schema may grow)."""
    missing = [c.name for c in SCHEMA if c.name not in set(input_columns(conn))]
    if not missing:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name in missing:
            conn.execute(f'ALTER TABLE inputs ADD COLUMN "{name}" REAL')
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
