"""Online backup of the recorder's SQLite file: a consistent copy while the controller writes.

:func:`backup` opens its own connection to the file, starts a read transaction and copies
every page with SQLite's backup API from that one snapshot. In WAL mode a reader never blocks
the writer, so the controller goes on recording during the copy; the copy holds exactly what
was committed when the backup started (later commits are in the next backup). The copy is a
single self-contained file (rollback journal, no ``-wal``/``-shm`` beside it), checked with
``PRAGMA integrity_check`` and only then moved into place, so a failed or interrupted backup
never replaces a good one.

Cost: the copy reads the whole file (about the file's size in I/O; 1.9 GB a day of snapshots
at 1,000 devices). While it runs, WAL checkpoints cannot pass its snapshot, so the ``-wal``
file grows by what is written meanwhile and shrinks at the next checkpoint after it.

From the controller (the watchdog job, say once a day), off the event loop::

    await asyncio.to_thread(backup, recorder.path, backup_dir / f"vpp-{day}.sqlite")

From a shell: ``vpp backup --db var/vpp.sqlite --out /backups/vpp-2026-03-29.sqlite``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vpp.recorder.db import RecorderError

#: Pages copied per step of the backup API (4 MiB at the recorder's 4 KiB pages). The
#: snapshot is held for the whole copy either way; steps only pace the progress reports.
STEP_PAGES = 1024


@dataclass(frozen=True)
class BackupResult:
    """What :func:`backup` wrote."""

    source: Path
    path: Path
    #: Pages and bytes of the copy.
    pages: int
    bytes: int
    #: ``PRAGMA user_version`` of the copy (the recorder's schema version).
    schema_version: int
    seconds: float
    #: The copy's ``PRAGMA integrity_check``: ``"ok"``, or ``"skipped"`` with ``check=False``.
    check: str


def backup(
    db_path: str | Path,
    out_path: str | Path,
    *,
    overwrite: bool = False,
    check: bool = True,
    progress: Callable[[int, int], None] | None = None,
    step_pages: int = STEP_PAGES,
    busy_timeout_s: float = 10.0,
) -> BackupResult:
    """Copy the recorder database at ``db_path`` to ``out_path``, online and consistent.

    The controller may be writing to ``db_path`` all along. ``out_path`` must not exist
    unless ``overwrite``; its folder is created. ``progress(copied_pages, total_pages)`` is
    called after each step. Raises :class:`RecorderError` naming the file and the cause; on
    any error nothing is left at ``out_path`` that was not there before.
    """
    source, out = Path(db_path), Path(out_path)
    if not source.is_file():
        raise RecorderError(source, "backup", "no such database file")
    if out.exists() and out.resolve() == source.resolve():
        raise RecorderError(source, "backup", "the copy would overwrite the database itself")
    if out.exists() and not overwrite:
        raise RecorderError(source, "backup", f"{out} exists (overwrite it explicitly)")
    if step_pages < 1:
        raise ValueError("step_pages must be >= 1")
    started = time.monotonic()
    partial = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        version = _copy(source, partial, progress, step_pages, busy_timeout_s)
        result = _finish(partial, check)
        os.replace(partial, out)
        _fsync_dir(out.parent)
    except (sqlite3.Error, OSError) as exc:
        _remove(partial)
        raise RecorderError(source, "backup", exc) from exc
    except BaseException:
        _remove(partial)
        raise
    pages, status = result
    return BackupResult(
        source=source,
        path=out,
        pages=pages,
        bytes=out.stat().st_size,
        schema_version=version,
        seconds=time.monotonic() - started,
        check=status,
    )


def _copy(
    source: Path,
    target: Path,
    progress: Callable[[int, int], None] | None,
    step_pages: int,
    busy_timeout_s: float,
) -> int:
    """Copy ``source`` to ``target`` from one read snapshot; return its schema version."""
    # mode=rw: never create a database where there was none.
    src = sqlite3.connect(
        f"{source.resolve().as_uri()}?mode=rw",
        uri=True,
        timeout=busy_timeout_s,
        isolation_level=None,
    )
    try:
        # The read transaction pins one snapshot for every step below: the backup API uses
        # an open transaction of the source connection instead of taking (and releasing) its
        # own per step, so commits by the controller meanwhile neither restart the copy nor
        # show up in it.
        src.execute("BEGIN")
        version = int(src.execute("PRAGMA user_version").fetchone()[0])
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(target, isolation_level=None)
        try:

            def report(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            src.backup(dst, pages=step_pages, progress=report, sleep=0)
        finally:
            dst.close()
        src.execute("COMMIT")
    finally:
        src.close()
    return version


def _finish(path: Path, check: bool) -> tuple[int, str]:
    """Make the copy one self-contained file, check it and flush it; (pages, check)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # The copy carries the source's WAL flag; a backup is a single file.
        conn.execute("PRAGMA journal_mode = DELETE").fetchone()
        status = "skipped"
        if check:
            found = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
            if found != ["ok"]:
                raise sqlite3.DatabaseError(
                    "integrity check of the copy failed: " + "; ".join(found[:5])
                )
            status = "ok"
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()
    with path.open("rb") as f:
        os.fsync(f.fileno())
    return pages, status


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-journal")):
        with contextlib.suppress(OSError):
            leftover.unlink()
