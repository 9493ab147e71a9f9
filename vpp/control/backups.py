"""Recorder backups written by the controller itself (``run.backup_dir``).

The watchdog asks :func:`due` every run; a backup is due when the newest copy in the folder is
``run.backup_interval_h`` old (by the controller's clock, read from the copies' names, so a
restart does not add one). The copy is :func:`vpp.recorder.backup` (SQLite's online backup,
integrity-checked, never a half-written file), made off the event loop; then all but the
newest ``run.backup_keep`` copies are deleted. Names: ``vpp-YYYY-MM-DDTHHMMZ.sqlite`` (UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vpp.core.site import Site
from vpp.recorder import BackupResult, backup

PATTERN = re.compile(r"^vpp-(\d{4}-\d\d-\d\dT\d{4}Z)\.sqlite$")
NAME_FORMAT = "vpp-%Y-%m-%dT%H%MZ.sqlite"


def copies(folder: Path) -> list[tuple[datetime, Path]]:
    """The backups in ``folder``, oldest first, with the time in their names."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        m = PATTERN.match(path.name)
        if m is not None:
            when = datetime.strptime(m.group(1), "%Y-%m-%dT%H%MZ").replace(tzinfo=UTC)
            found.append((when, path))
    return sorted(found)


def due(site: Site, now: datetime) -> Path | None:
    """Where the next backup goes when one is due ``now``; None when none is."""
    if site.run.backup_dir is None:
        return None
    folder = Path(site.run.backup_dir)
    have = copies(folder)
    if have and now - have[-1][0] < timedelta(hours=site.run.backup_interval_h):
        return None
    return folder / now.astimezone(UTC).strftime(NAME_FORMAT)


def write(db_path: Path, out: Path, keep: int) -> tuple[BackupResult, list[Path]]:
    """Copy the recorder to ``out`` (blocking: run it in a thread), then delete all but the
    newest ``keep`` copies; returns what was written and what was deleted."""
    result = backup(db_path, out, overwrite=True)
    old = [path for _, path in copies(out.parent)[:-keep]]
    for path in old:
        path.unlink(missing_ok=True)
    return result, old
