"""The Recorder: an append-only SQLite (WAL) store of snapshots, plans, setpoints and events.

Every ``record_*`` call is one transaction, committed before it returns, so a row that a call
returned for survives a kill -9 of the process. A failed write (disk full, file locked,
corrupt) rolls back, adds one to :attr:`Recorder.write_errors` and raises
:class:`RecorderError` naming the file and the operation: the caller logs it and carries on;
the connection stays usable for the next write.

How the asyncio controller calls it: the methods are synchronous and thread-safe (one
connection behind a lock). Recording a 1,000-device poll takes about 10-25 ms (up to ~130 ms
when its commit runs a WAL checkpoint, every ~4 MB written): too long to block the event loop
that is polling devices, so call writes through
``await asyncio.to_thread(recorder.record_snapshot, snapshot)``; the same for
:meth:`Recorder.apply_retention` (hourly) which may run for seconds in short batches. Reads at
start-up (:meth:`Recorder.last_plan`, :meth:`Recorder.last_snapshot`) may be called directly.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import pandas as pd

from adapters.snapshot import Snapshot
from vpp.core.clock import Clock, SystemClock
from vpp.data.schema import COLUMNS, STEP, index_problems
from vpp.recorder import queries, retention
from vpp.recorder.codec import dumps, frame_to_parquet, info_dict, snapshot_row
from vpp.recorder.db import MEASURED_COLUMNS, RecorderError, connect, from_ms, to_ms

T = TypeVar("T")


class PlanLike(Protocol):
    """What :meth:`Recorder.record_plan` needs of a plan: its table and how it was made."""

    @property
    def frame(self) -> pd.DataFrame: ...

    @property
    def info(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class SetpointRecord:
    """One setpoint as requested, written (after clamping) and read back; powers in W,
    limits in % (the unit follows ``quantity``, e.g. ``battery_w``, ``pv_limit_pct``)."""

    time: datetime
    device_id: str
    quantity: str
    requested: float | None
    written: float | None
    readback: float | None
    ok: bool
    message: str = ""


class Recorder:
    """SQLite store at ``path`` (created if missing); see the module docstring.

    ``retention_days`` bounds every table; ``snapshot_retention_days`` (default: the same)
    bounds the snapshots alone, which make up almost all of the file. ``clock`` stamps events
    without a time and decides "now" for retention.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        retention_days: float = 90,
        clock: Clock | None = None,
        snapshot_retention_days: float | None = None,
        busy_timeout_s: float = 2.0,
    ) -> None:
        snapshot_days = (
            retention_days if snapshot_retention_days is None else (snapshot_retention_days)
        )
        if retention_days <= 0 or snapshot_days <= 0:
            raise ValueError("retention days must be > 0")
        self.path = Path(path)
        self.retention = timedelta(days=retention_days)
        self.snapshot_retention = timedelta(days=snapshot_days)
        self.clock: Clock = clock or SystemClock()
        #: Failed writes since open (a metric exports it).
        self.write_errors = 0
        #: The message of the last failed write, for a status page.
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._device_keys: dict[tuple[str, str], int] = {}
        try:
            self._conn: sqlite3.Connection | None = connect(self.path, busy_timeout_s)
        except sqlite3.Error as exc:
            raise RecorderError(self.path, "open", exc) from exc

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (idempotent); later calls raise RecorderError."""
        with self._lock:
            if self._conn is None:
                return
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):  # planner statistics only
                conn.execute("PRAGMA optimize")
            conn.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connection(self, operation: str) -> sqlite3.Connection:
        if self._conn is None:
            raise RecorderError(self.path, operation, "recorder is closed")
        return self._conn

    def _write(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one transaction, committed before returning."""
        return self._locked_write(operation, work, transaction=True)

    def _autocommit(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` outside an explicit transaction (statements that manage their own)."""
        return self._locked_write(operation, work, transaction=False)

    def _locked_write(
        self, operation: str, work: Callable[[sqlite3.Connection], T], transaction: bool
    ) -> T:
        with self._lock:
            conn = self._connection(operation)
            try:
                if transaction:
                    conn.execute("BEGIN IMMEDIATE")
                result = work(conn)
                if transaction:
                    conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                self._rollback(conn)
                self.write_errors += 1
                error = RecorderError(self.path, operation, exc)
                self.last_error = str(error)
                raise error from exc
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            # SQLite may have rolled back already (e.g. after SQLITE_FULL).
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _read(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._connection(operation)
            try:
                return work(conn)
            except sqlite3.Error as exc:
                raise RecorderError(self.path, operation, exc) from exc

    # -- writes ---------------------------------------------------------------------------

    def record_snapshot(self, snapshot: Snapshot) -> int:
        """Record one poll: a row per device, in one transaction. Returns the poll's id."""
        states = list(snapshot)
        time_ms = to_ms(snapshot.time)
        rows = [snapshot_row(0, 0, s)[2:] for s in states]  # encode outside the lock

        def work(conn: sqlite3.Connection) -> int:
            keys, new = self._keys(conn, [(s.id, s.kind) for s in states])
            cur = conn.execute(
                "INSERT INTO polls (time_ms, n_devices) VALUES (?, ?)", (time_ms, len(states))
            )
            poll = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(poll, k, *r) for k, r in zip(keys, rows, strict=True)],
            )
            new_keys.update(new)
            return poll

        new_keys: dict[tuple[str, str], int] = {}
        poll = self._write("record snapshot", work)
        # Cached only once committed: a rolled-back device insert must be redone next time.
        self._device_keys.update(new_keys)
        return poll

    def _keys(
        self, conn: sqlite3.Connection, pairs: list[tuple[str, str]]
    ) -> tuple[list[int], dict[tuple[str, str], int]]:
        new: dict[tuple[str, str], int] = {}
        for pair in pairs:
            if pair not in self._device_keys and pair not in new:
                conn.execute("INSERT OR IGNORE INTO devices (id, kind) VALUES (?, ?)", pair)
                row = conn.execute(
                    "SELECT key FROM devices WHERE id = ? AND kind = ?", pair
                ).fetchone()
                new[pair] = int(row[0])
        known = self._device_keys
        return [known[p] if p in known else new[p] for p in pairs], new

    def record_plan(self, plan: PlanLike, created_at: datetime) -> int:
        """Record a plan: its table (indexed by UTC step start) as Parquet, its solve info
        as JSON. Returns its id."""
        frame = plan.frame
        info = info_dict(plan.info)
        index = frame.index
        first = to_ms(index[0]) if isinstance(index, pd.DatetimeIndex) and len(index) else None
        row = (
            to_ms(created_at),
            first,
            len(frame),
            info.get("status"),
            info.get("fallback_reason"),
            _float_or_none(info.get("objective_eur")),
            dumps(info),
            frame_to_parquet(frame),
        )
        return self._write(
            "record plan",
            lambda c: int(
                c.execute(
                    "INSERT INTO plans (created_ms, first_step_ms, n_steps, status, "
                    "fallback_reason, objective_eur, info, frame) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                ).lastrowid
                or 0
            ),
        )

    def record_setpoints(self, results: Iterable[SetpointRecord], dry_run: bool = False) -> int:
        """Record a batch of setpoints in one transaction; returns the number of rows."""
        rows = [
            (
                to_ms(r.time),
                r.device_id,
                r.quantity,
                r.requested,
                r.written,
                r.readback,
                int(r.ok),
                r.message,
                int(dry_run),
            )
            for r in results
        ]
        self._write(
            "record setpoints",
            lambda c: c.executemany(
                "INSERT INTO setpoints (time_ms, device, quantity, requested, written, readback, "
                "ok, message, dry_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            ),
        )
        return len(rows)

    def record_event(
        self,
        level: str,
        source: str,
        kind: str,
        message: str,
        device: str | None = None,
        data: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> None:
        """Record one event (``time`` defaults to the clock's now); ``data`` as JSON."""
        row = (
            to_ms(time or self.clock.now()),
            level,
            source,
            device,
            kind,
            message,
            dumps(data) if data is not None else None,
        )
        self._write(
            "record event",
            lambda c: c.execute(
                "INSERT INTO events (time_ms, level, source, device, kind, message, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            ),
        )

    def record_inputs(self, frame: pd.DataFrame) -> int:
        """Upsert external inputs by quarter hour (columns of :mod:`vpp.data.schema`).

        A NaN leaves the value already recorded; returns the number of rows written.
        """
        problems = index_problems(frame.index)
        unknown = [str(c) for c in frame.columns if c not in COLUMNS]
        if problems or unknown:
            raise ValueError(
                "inputs: "
                + "; ".join([str(p) for p in problems] + [f"unknown column {c}" for c in unknown])
            )
        names = [str(c) for c in frame.columns]
        index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ms")
        now = to_ms(self.clock.now())
        values = frame.to_numpy(dtype=float, na_value=float("nan")).tolist()
        rows = [
            (int(t), now, *(None if v != v else v for v in vals))
            for t, vals in zip(index.asi8, values, strict=True)
        ]
        cols = ", ".join(f'"{n}"' for n in names)
        updates = ", ".join(f'"{n}" = coalesce(excluded."{n}", inputs."{n}")' for n in names)
        sql = (
            f"INSERT INTO inputs (time_ms, recorded_ms, {cols}) "
            f"VALUES ({', '.join('?' * (len(names) + 2))}) ON CONFLICT (time_ms) "
            f"DO UPDATE SET recorded_ms = excluded.recorded_ms, {updates}"
        )
        self._write("record inputs", lambda c: c.executemany(sql, rows))
        return len(rows)

    def record_measured(self, frame: pd.DataFrame) -> int:
        """Upsert rolled-up quarter hours (index: UTC quarter hours; columns of
        :data:`~vpp.recorder.db.MEASURED_COLUMNS`, missing ones NULL); returns rows written."""
        index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ms")
        table = frame.reindex(columns=list(MEASURED_COLUMNS))
        values = table.to_numpy(dtype=float, na_value=float("nan")).tolist()
        rows = [
            (int(t), *(None if v != v else v for v in vals))
            for t, vals in zip(index.asi8, values, strict=True)
        ]
        names = ", ".join(MEASURED_COLUMNS)
        sql = (
            f"INSERT OR REPLACE INTO measured (time_ms, {names}) "
            f"VALUES ({', '.join('?' * (len(MEASURED_COLUMNS) + 1))})"
        )
        self._write("record measured", lambda c: c.executemany(sql, rows))
        return len(rows)

    # -- reads ----------------------------------------------------------------------------

    def last_plan(self) -> tuple[datetime, pd.DataFrame, dict[str, Any]] | None:
        """(created_at, plan table, solve info) of the last recorded plan, or None."""
        found = self._read("read last plan", queries.last_plan)
        if found is None:
            return None
        created, frame, info = found
        return created, frame, _json_dict(info)

    def last_snapshot(self) -> Snapshot | None:
        """The last recorded poll rebuilt as a Snapshot (times to the ms), or None."""
        return self._read("read last snapshot", queries.last_snapshot)

    def events(
        self,
        since: datetime | None = None,
        limit: int | None = 1000,
        *,
        until: datetime | None = None,
        device: str | None = None,
    ) -> pd.DataFrame:
        """The latest ``limit`` events in ``[since, until)``, oldest first (``data`` JSON)."""
        return self._read(
            "read events", lambda c: queries.events_frame(c, since, until, device, limit)
        )

    def setpoints(
        self,
        since: datetime | None = None,
        *,
        until: datetime | None = None,
        device: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Setpoints in ``[since, until)`` (the latest ``limit``), oldest first."""
        return self._read(
            "read setpoints", lambda c: queries.setpoints_frame(c, since, until, device, limit)
        )

    def plans(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """One summary row per plan created in ``[since, until)`` (without the tables)."""
        return self._read("read plans", lambda c: queries.plans_frame(c, since, until))

    def plan_frames(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[datetime, pd.DataFrame]]:
        """(created_at, plan table) of every plan created in ``[since, until)``, oldest first."""
        return self._read("read plans", lambda c: queries.plan_frames(c, since, until))

    def inputs(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Recorded inputs in ``[since, until)`` indexed by UTC ``time``; NaN where unknown."""
        return self._read("read inputs", lambda c: queries.inputs_frame(c, since, until))

    def snapshots_frame(
        self,
        start: datetime,
        end: datetime,
        *,
        devices: Iterable[str] | None = None,
        with_json: bool = False,
    ) -> pd.DataFrame:
        """One row per device and poll with poll time in ``[start, end)``.

        Columns: time, device, kind, online, read_at, power_w [W], soc_pct [%], energy_wh
        [Wh], plus the reading and health JSON if ``with_json``. A day of 1,000 devices is
        8.6 million rows: narrow it with ``devices`` or use :meth:`poll_totals`.
        """
        return self._read(
            "read snapshots", lambda c: queries.snapshots_frame(c, start, end, devices, with_json)
        )

    def poll_totals(
        self, start: datetime, end: datetime, groups: Mapping[str, tuple[str, float]]
    ) -> pd.DataFrame:
        """Per poll and group, summed power [W] and weight of the online devices (SQL-side)."""
        return self._read("sum snapshots", lambda c: queries.poll_totals(c, start, end, groups))

    def measured(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Rolled-up quarter hours in ``[since, until)`` indexed by UTC ``time``."""
        return self._read("read measured", lambda c: queries.measured_frame(c, since, until))

    def first_poll_time(self) -> datetime | None:
        """Time of the oldest poll still recorded, or None."""
        ms = self._read("read polls", queries.first_poll_ms)
        return None if ms is None else from_ms(ms)

    def last_measured_time(self) -> datetime | None:
        """Start of the last rolled-up quarter hour, or None."""
        ms = self._read("read measured", queries.last_measured_ms)
        return None if ms is None else from_ms(ms)

    def poll_times(self, start: datetime, end: datetime) -> pd.Series:
        """UTC times of the polls recorded in ``[start, end)``."""
        return self._read("read polls", lambda c: queries.poll_times(c, start, end))

    # -- housekeeping ---------------------------------------------------------------------

    def apply_retention(
        self,
        now: datetime | None = None,
        roll_up: Callable[[datetime], int] | None = None,
    ) -> retention.RetentionStats:
        """Delete rows older than the retention, in short batches; release excess free pages.

        With ``roll_up`` and a snapshot retention shorter than the rest, ``roll_up(cutoff)``
        first stores what the snapshots before ``cutoff`` measured per quarter hour (see
        :func:`vpp.recorder.export.apply_retention`, which passes the exporter's roll-up),
        so their days still export; snapshots then go by whole quarter hours. Call it hourly
        (through ``asyncio.to_thread``); see :mod:`vpp.recorder.retention`.
        """
        now = now or self.clock.now()
        stats = retention.RetentionStats()
        snapshot_cutoff = now - self.snapshot_retention
        if roll_up is not None and self.snapshot_retention < self.retention:
            snapshot_cutoff = pd.Timestamp(snapshot_cutoff).floor(STEP).to_pydatetime()
            stats.rolled_up = roll_up(snapshot_cutoff)
        stats.deleted = retention.delete_all_old(
            self._write, to_ms(now - self.retention), to_ms(snapshot_cutoff)
        )
        stats.released_pages = retention.release_free_pages(self._autocommit)
        stats.page_count, stats.freelist_count = self._read("checkpoint", _checkpoint)
        return stats

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` messages; ``["ok"]`` for a sound file. Reads it all."""
        return self._read(
            "integrity check", lambda c: [str(r[0]) for r in c.execute("PRAGMA integrity_check")]
        )

    def page_counts(self) -> tuple[int, int]:
        """(pages in the file, free pages among them); pages are 4 KiB."""
        return self._read("read page count", retention.page_counts)


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
    # Copies the WAL into the file so released pages leave it; PASSIVE never waits for readers.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    return retention.page_counts(conn)


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _json_dict(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data
