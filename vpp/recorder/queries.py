"""Read queries of the recorder: each takes a connection and returns plain Python or pandas.

Times come back as timezone-aware UTC (``datetime64[ms, UTC]`` columns in frames).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from adapters.snapshot import DeviceState, Snapshot
from vpp.recorder.codec import device_state, frame_from_parquet
from vpp.recorder.db import MEASURED_COLUMNS, from_ms, input_columns, to_ms

SNAPSHOT_COLUMNS = (
    "time", "device", "kind", "online", "read_at", "power_w", "soc_pct", "energy_wh",
)  # fmt: skip
SETPOINT_COLUMNS = (
    "time", "device", "quantity", "requested", "written", "readback", "ok", "message", "dry_run",
)  # fmt: skip
EVENT_COLUMNS = ("time", "level", "source", "device", "kind", "message", "data")
PLAN_COLUMNS = (
    "created_at", "first_step", "n_steps", "status", "fallback_reason", "objective_eur", "info",
)  # fmt: skip
TOTALS_COLUMNS = ("poll", "time", "group", "power_w", "weight", "n_online", "n_devices")


def _times(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.astype("Int64"), unit="ms", utc=True)


def _frame(rows: list[Any], columns: Sequence[str], times: Iterable[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    for name in times:
        frame[name] = _times(frame[name])
    return frame


def _range(since: datetime | None, until: datetime | None) -> tuple[int, int]:
    lo = to_ms(since) if since is not None else -(2**62)
    hi = to_ms(until) if until is not None else 2**62
    return lo, hi


def last_snapshot(conn: sqlite3.Connection) -> Snapshot | None:
    """The most recently recorded poll, rebuilt (times to the millisecond)."""
    last = conn.execute("SELECT id, time_ms FROM polls ORDER BY id DESC LIMIT 1").fetchone()
    if last is None:
        return None
    rows = conn.execute(
        "SELECT d.id, d.kind, s.read_at_ms, s.reading, s.health FROM snapshots s "
        "JOIN devices d ON d.key = s.device WHERE s.poll = ?",
        (last[0],),
    ).fetchall()
    devices: dict[str, DeviceState] = {}
    for row in rows:
        devices[row[0]] = device_state(*row)
    return Snapshot(time=from_ms(last[1]), devices=devices)


def device_keys(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[int, str]:
    """Device key -> id for the given ids (an id recorded under two kinds has two keys)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for key, device_id in conn.execute(
            f"SELECT key, id FROM devices WHERE id IN ({marks})", chunk
        ):
            found[int(key)] = str(device_id)
    return found


def snapshots_frame(
    conn: sqlite3.Connection,
    start: datetime,
    end: datetime,
    devices: Iterable[str] | None,
    with_json: bool,
) -> pd.DataFrame:
    """Snapshot rows with poll time in ``[start, end)``, in time order."""
    columns = list(SNAPSHOT_COLUMNS) + (["reading", "health"] if with_json else [])
    select = (
        "SELECT p.time_ms, d.id, d.kind, s.online, s.read_at_ms, s.power_w, s.soc_pct, "
        "s.energy_wh" + (", s.reading, s.health" if with_json else "")
    )
    sql = (
        f"{select} FROM polls p JOIN snapshots s ON s.poll = p.id "
        "JOIN devices d ON d.key = s.device WHERE p.time_ms >= ? AND p.time_ms < ?"
    )
    params: list[Any] = [to_ms(start), to_ms(end)]
    if devices is not None:
        keys = list(device_keys(conn, devices))
        sql += f" AND s.device IN ({','.join('?' * len(keys))})"
        params += keys
    rows = conn.execute(sql + " ORDER BY p.time_ms, p.id, s.device", params).fetchall()
    frame = _frame(rows, columns, ("time", "read_at"))
    frame["online"] = frame["online"].astype(bool)
    return frame


def poll_totals(
    conn: sqlite3.Connection,
    start: datetime,
    end: datetime,
    groups: Mapping[str, tuple[str, float]],
) -> pd.DataFrame:
    """Per poll and device group: summed power of the online devices and their weights.

    ``groups`` maps device id -> (group name, weight), e.g. a PV inverter's kWp. A device
    counts when it is online and reports a power. Columns :data:`TOTALS_COLUMNS`; power in W.
    """
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS total_groups "
        "(device INTEGER PRIMARY KEY, grp TEXT NOT NULL, weight REAL NOT NULL)"
    )
    conn.execute("DELETE FROM temp.total_groups")
    keys = device_keys(conn, groups)
    conn.executemany(
        "INSERT INTO temp.total_groups VALUES (?, ?, ?)",
        [(key, groups[i][0], float(groups[i][1])) for key, i in keys.items()],
    )
    counted = "s.online AND s.power_w IS NOT NULL"
    # CROSS JOIN fixes the loop order: polls by time, then each poll's contiguous rows.
    rows = conn.execute(
        f"SELECT p.id, p.time_ms, g.grp, SUM(CASE WHEN {counted} THEN s.power_w END), "
        f"TOTAL(CASE WHEN {counted} THEN g.weight END), TOTAL(CASE WHEN {counted} THEN 1 END), "
        "COUNT(*) FROM polls p CROSS JOIN snapshots s CROSS JOIN temp.total_groups g "
        "WHERE s.poll = p.id AND g.device = s.device AND p.time_ms >= ? AND p.time_ms < ? "
        "GROUP BY p.id, g.grp ORDER BY p.time_ms, p.id",
        (to_ms(start), to_ms(end)),
    ).fetchall()
    return _frame(rows, TOTALS_COLUMNS, ("time",))


def poll_times(conn: sqlite3.Connection, start: datetime, end: datetime) -> pd.Series:
    """UTC times of the polls in ``[start, end)``."""
    rows = conn.execute(
        "SELECT time_ms FROM polls WHERE time_ms >= ? AND time_ms < ? ORDER BY time_ms",
        (to_ms(start), to_ms(end)),
    ).fetchall()
    return _times(pd.Series([r[0] for r in rows], dtype="Int64", name="time"))


def last_plan(conn: sqlite3.Connection) -> tuple[datetime, pd.DataFrame, str] | None:
    """(created_at, plan table, info JSON) of the most recently recorded plan."""
    row = conn.execute(
        "SELECT created_ms, frame, info FROM plans ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return from_ms(row[0]), frame_from_parquet(row[1]), str(row[2])


def plan_frames(
    conn: sqlite3.Connection, since: datetime | None, until: datetime | None
) -> list[tuple[datetime, pd.DataFrame]]:
    """(created_at, plan table) of every plan created in ``[since, until)``, oldest first."""
    rows = conn.execute(
        "SELECT created_ms, frame FROM plans WHERE created_ms >= ? AND created_ms < ? "
        "ORDER BY created_ms, id",
        _range(since, until),
    ).fetchall()
    return [(from_ms(created), frame_from_parquet(blob)) for created, blob in rows]


def plans_frame(
    conn: sqlite3.Connection, since: datetime | None, until: datetime | None
) -> pd.DataFrame:
    """One row per plan created in ``[since, until)``: :data:`PLAN_COLUMNS`."""
    rows = conn.execute(
        "SELECT created_ms, first_step_ms, n_steps, status, fallback_reason, objective_eur, "
        "info FROM plans WHERE created_ms >= ? AND created_ms < ? ORDER BY created_ms, id",
        _range(since, until),
    ).fetchall()
    return _frame(rows, PLAN_COLUMNS, ("created_at", "first_step"))


def setpoints_frame(
    conn: sqlite3.Connection,
    since: datetime | None,
    until: datetime | None,
    device: str | None,
    limit: int | None,
) -> pd.DataFrame:
    """Setpoint rows in ``[since, until)`` (the latest ``limit``), in time order."""
    sql = (
        "SELECT time_ms, device, quantity, requested, written, readback, ok, message, "
        "dry_run FROM setpoints WHERE time_ms >= ? AND time_ms < ?"
    )
    rows = _latest(conn, sql, list(_range(since, until)), device, limit)
    frame = _frame(rows, SETPOINT_COLUMNS, ("time",))
    frame["ok"] = frame["ok"].astype(bool)
    frame["dry_run"] = frame["dry_run"].astype(bool)
    return frame


def events_frame(
    conn: sqlite3.Connection,
    since: datetime | None,
    until: datetime | None,
    device: str | None,
    limit: int | None,
) -> pd.DataFrame:
    """Event rows in ``[since, until)`` (the latest ``limit``), in time order; data as JSON."""
    sql = (
        "SELECT time_ms, level, source, device, kind, message, data FROM events "
        "WHERE time_ms >= ? AND time_ms < ?"
    )
    rows = _latest(conn, sql, list(_range(since, until)), device, limit)
    return _frame(rows, EVENT_COLUMNS, ("time",))


def _latest(
    conn: sqlite3.Connection, sql: str, params: list[Any], device: str | None, limit: int | None
) -> list[Any]:
    if device is not None:
        sql += " AND device = ?"
        params.append(device)
    sql += " ORDER BY time_ms DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    rows = conn.execute(sql, params).fetchall()
    rows.reverse()
    return rows


def inputs_frame(
    conn: sqlite3.Connection, since: datetime | None, until: datetime | None
) -> pd.DataFrame:
    """Recorded inputs in ``[since, until)``, indexed by ``time`` (UTC); NaN where unknown."""
    return _quarter_frame(conn, "inputs", input_columns(conn), since, until)


def measured_frame(
    conn: sqlite3.Connection, since: datetime | None, until: datetime | None
) -> pd.DataFrame:
    """Rolled-up quarter hours in ``[since, until)`` indexed by ``time`` (UTC)."""
    return _quarter_frame(conn, "measured", MEASURED_COLUMNS, since, until)


def _quarter_frame(
    conn: sqlite3.Connection,
    table: str,
    names: Sequence[str],
    since: datetime | None,
    until: datetime | None,
) -> pd.DataFrame:
    """Rows of a table keyed by ``time_ms`` in ``[since, until)`` as floats, by UTC ``time``."""
    quoted = ", ".join(f'"{n}"' for n in names)
    rows = conn.execute(
        f"SELECT time_ms, {quoted} FROM {table} WHERE time_ms >= ? AND time_ms < ? "
        "ORDER BY time_ms",
        _range(since, until),
    ).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["time", *names])
    frame["time"] = _times(frame["time"])
    return frame.set_index("time").astype("float64")


def last_measured_ms(conn: sqlite3.Connection) -> int | None:
    """The start of the last rolled-up quarter hour [epoch ms], or None."""
    row = conn.execute("SELECT max(time_ms) FROM measured").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def first_poll_ms(conn: sqlite3.Connection) -> int | None:
    """The time of the oldest recorded poll [epoch ms], or None."""
    row = conn.execute("SELECT min(time_ms) FROM polls").fetchone()
    return None if row is None or row[0] is None else int(row[0])
