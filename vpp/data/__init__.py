"""Input data: the quarter-hourly schema, its reader and writer, and the shipped years.

Read a shipped year (or a window of it) with::

    from vpp.data import read_inputs, shipped_inputs
    df = read_inputs(shipped_inputs(2018), start="2018-06-01", end="2018-06-03")

The converter from the public sources lives in :mod:`vpp.data.convert` and PV from weather
in :mod:`vpp.data.pv` (imported on demand: they pull in pvlib).
"""

from __future__ import annotations

from pathlib import Path

from vpp.data.schema import (
    COLUMNS,
    INDEX_NAME,
    REQUIRED,
    SCHEMA,
    STEP,
    Column,
    InputDataError,
    Problem,
    find_problems,
    read_inputs,
    summarize_inputs,
    validate_inputs,
    write_inputs,
)

#: The repository's ``data/`` folder with the shipped input years.
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def shipped_inputs(year: int = 2018) -> Path:
    """Path of the shipped input file for ``year`` (2018: all real; 2023: see data/README)."""
    return DATA_DIR / f"inputs_{year}.parquet"


__all__ = [
    "COLUMNS",
    "DATA_DIR",
    "INDEX_NAME",
    "REQUIRED",
    "SCHEMA",
    "STEP",
    "Column",
    "InputDataError",
    "Problem",
    "find_problems",
    "read_inputs",
    "shipped_inputs",
    "summarize_inputs",
    "validate_inputs",
    "write_inputs",
]
