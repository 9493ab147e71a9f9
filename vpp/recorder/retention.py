"""Retention: delete rows older than a cutoff in bounded batches, then bound the file size.

Why the file stays bounded: SQLite never shrinks a file on DELETE; freed pages go on the free
list and the next inserts reuse them. In steady state (retention run hourly, the same rate of
inserts) the free list is refilled and drained and the file stops growing once it holds
``retention_days`` of data. Free pages beyond :data:`FREE_RESERVE` of the file (after
retention was shortened, or after a burst) are handed back with ``PRAGMA
incremental_vacuum``, which needs ``auto_vacuum = INCREMENTAL`` from the file's creation
(db.py). A full VACUUM would rewrite the whole file (gigabytes) and block writers meanwhile,
so it is never run here.

Each batch is its own short transaction: the controller's poll writes interleave with a long
clean-up instead of waiting for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
#: Runs one unit of work in its own transaction under the recorder's lock.
Runner = Callable[[str, Callable[[sqlite3.Connection], T]], T]

#: Rows deleted per transaction (about 20-50 ms of work).
BATCH_ROWS = 20_000
#: Free pages kept for reuse, as a share of the file's pages; the rest is released.
FREE_RESERVE = 0.25
#: Pages released per incremental_vacuum transaction (8 MiB at 4 KiB pages).
VACUUM_PAGES = 2048

#: Tables with one time column and an INTEGER PRIMARY KEY ``id``: (table, time column).
_SIMPLE_TABLES = (
    ("plans", "created_ms"),
    ("setpoints", "time_ms"),
    ("events", "time_ms"),
)


@dataclass
class RetentionStats:
    """What one retention run did: rows deleted per table, pages released, file pages left."""

    deleted: dict[str, int] = field(default_factory=dict)
    #: Quarter hours rolled up from snapshots before they were deleted.
    rolled_up: int = 0
    released_pages: int = 0
    page_count: int = 0
    freelist_count: int = 0


def delete_polls(run: Runner[int], cutoff_ms: int) -> int:
    """Delete polls (and their snapshot rows) older than ``cutoff_ms``; return rows deleted."""
    total = 0
    while True:
        deleted = run("apply retention (snapshots)", lambda c: _delete_poll_batch(c, cutoff_ms))
        if deleted < 0:
            return total
        total += deleted


def _delete_poll_batch(conn: sqlite3.Connection, cutoff_ms: int) -> int:
    polls = conn.execute(
        "SELECT id, n_devices FROM polls WHERE time_ms < ? ORDER BY time_ms LIMIT 1000",
        (cutoff_ms,),
    ).fetchall()
    if not polls:
        return -1
    ids: list[int] = []
    rows = 0
    for poll_id, n_devices in polls:  # whole polls, up to about BATCH_ROWS rows
        if ids and rows + n_devices > BATCH_ROWS:
            break
        ids.append(int(poll_id))
        rows += int(n_devices)
    marks = ",".join("?" * len(ids))
    deleted = conn.execute(f"DELETE FROM snapshots WHERE poll IN ({marks})", ids).rowcount
    conn.execute(f"DELETE FROM polls WHERE id IN ({marks})", ids)
    return int(deleted)


def delete_before(run: Runner[int], table: str, column: str, cutoff_ms: int) -> int:
    """Delete rows of ``table`` with ``column`` < ``cutoff_ms``, BATCH_ROWS per transaction."""
    key = "time_ms" if table in ("inputs", "measured") else "id"
    sql = (
        f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
        f"WHERE {column} < ? ORDER BY {column} LIMIT {BATCH_ROWS})"
    )
    total = 0
    while True:
        deleted = run(
            f"apply retention ({table})", lambda c: int(c.execute(sql, (cutoff_ms,)).rowcount)
        )
        total += deleted
        if deleted < BATCH_ROWS:
            return total


def delete_all_old(run: Runner[int], cutoff_ms: int, snapshot_cutoff_ms: int) -> dict[str, int]:
    """Apply retention to every table; returns rows deleted per table."""
    deleted = {"snapshots": delete_polls(run, snapshot_cutoff_ms)}
    for table, column in (*_SIMPLE_TABLES, ("inputs", "time_ms"), ("measured", "time_ms")):
        deleted[table] = delete_before(run, table, column, cutoff_ms)
    return deleted


def page_counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(page_count, freelist_count) of the main database."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return pages, free


def release_free_pages(run: Runner[int], reserve: float = FREE_RESERVE) -> int:
    """Hand free pages beyond ``reserve`` x page_count back to the file system; return count."""
    released = 0
    while True:
        step = run("apply retention (incremental vacuum)", lambda c: _vacuum_step(c, reserve))
        if step <= 0:  # no excess left (or nothing could move): done
            return released
        released += step


def _vacuum_step(conn: sqlite3.Connection, reserve: float) -> int:
    pages, free = page_counts(conn)
    excess = free - int(reserve * pages)
    if excess <= 0:
        return 0
    n = min(excess, VACUUM_PAGES)
    # The pragma frees one page per step of its statement and execute() steps only once;
    # executescript() runs it to completion, as its own transaction.
    conn.executescript(f"PRAGMA incremental_vacuum({n});")
    return free - page_counts(conn)[1]
