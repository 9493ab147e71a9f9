"""The historic inputs a replay reads: a year file, or a folder of exported days.

Any file in the input schema (:mod:`vpp.data.schema`) works: the shipped years
(``data/inputs_<year>.parquet``), a converted year, or the days ``vpp export`` writes
(``inputs_<day>.csv``). A folder is read as one table: every ``*.parquet``, ``*.csv`` and
``*.csv.gz`` in it, later files winning where they overlap, keeping only the columns that all
of them have (exported days leave out optional columns that were never recorded).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from vpp.core.site import Site
from vpp.data import InputDataError, read_inputs, shipped_inputs
from vpp.data.schema import INDEX_NAME, SCHEMA
from vpp.replay.runner import raw_window


def default_inputs(site: Site, first: date) -> Path:
    """The site's ``run.inputs_file``, else the shipped year of ``first``."""
    if site.run.inputs_file:
        return Path(site.run.inputs_file)
    return shipped_inputs(first.year)


def input_files(path: Path) -> list[Path]:
    """The input files at ``path``: itself, or the schema files in the folder, sorted."""
    if not path.is_dir():
        return [path]
    found = [*path.glob("*.parquet"), *path.glob("*.csv"), *path.glob("*.csv.gz")]
    return sorted(found)


def read_replay_inputs(
    site: Site, first: date, last: date, path: Path | None = None
) -> pd.DataFrame:
    """Raw inputs for replaying local days ``first..last`` (history and horizon included,
    as far as the data reaches). Raises :class:`~vpp.data.InputDataError` for unusable files
    and ValueError when nothing covers the window."""
    source = path or default_inputs(site, first)
    start, end = raw_window(site, first, last)
    frames = []
    for file in input_files(source):
        try:
            frames.append(read_inputs(file, start, end))
        except InputDataError as exc:
            if [p.message for p in exc.problems] != ["no rows"]:
                raise
    if not frames:
        raise ValueError(
            f"{source}: no input rows between {start.isoformat()} and {end.isoformat()}"
        )
    common = [c.name for c in SCHEMA if all(c.name in f.columns for f in frames)]
    table = pd.concat([f[common] for f in frames])
    table = table[~table.index.duplicated(keep="last")].sort_index()
    table.index.name = INDEX_NAME
    return table
