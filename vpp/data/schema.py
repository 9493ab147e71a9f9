"""The input schema: one quarter-hourly table that the optimizer, the forecasts and replay read.

The schema is data (:data:`SCHEMA`): one :class:`Column` per series with its unit, meaning,
whether it is required and its valid range. A file is a table indexed by ``time``: UTC
interval starts aligned to :00/:15/:30/:45, one row per quarter hour, no gaps. Each value is
the mean over its quarter hour (prices: the price that applied in it).

:func:`read_inputs` reads CSV (optionally gzipped) or Parquet and validates; every problem it
finds is named by column and first bad timestamp, e.g.
``price_eur_per_mwh: 3 value(s) below -500 EUR/MWh, first at 2018-03-25T01:00Z``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

INDEX_NAME = "time"
#: Column of problems that concern the whole file (missing, unreadable).
FILE = "(file)"
STEP = pd.Timedelta(minutes=15)
#: Hours per quarter-hour step, to turn mean powers into energies.
STEP_H = 0.25
#: How CSV files write ``time``.
CSV_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Column:
    """One series of the input table."""

    name: str
    unit: str
    description: str
    required: bool
    #: Valid range, inclusive.
    min: float
    max: float
    #: Decimals kept in shipped files (finer than the sources resolve).
    decimals: int


SCHEMA: tuple[Column, ...] = (
    Column("price_eur_per_mwh", "EUR/MWh",
           "Day-ahead price, bidding zone DE-LU (DE-AT-LU before 2018-10-01)",
           True, -500.0, 4000.0, 2),
    Column("pv_w_per_kwp", "W/kWp",
           "PV AC output per kWp installed", True, 0.0, 1200.0, 2),
    Column("load_w_per_mwh_a", "W/(MWh/a)",
           "Household electric load per MWh of annual consumption (BDEW H25)",
           True, 0.0, 2000.0, 3),
    Column("heat_w_per_mwh_a", "W/(MWh/a)",
           "Heat demand per MWh of annual heat demand (BDEW SigLinDe)",
           True, 0.0, 3000.0, 3),
    Column("outdoor_temp_c", "degC", "Outdoor air temperature, 2 m", True, -40.0, 50.0, 2),
    Column("co2_g_per_kwh", "g/kWh",
           "Grid CO2-eq intensity of German generation (average mix)",
           False, 0.0, 1500.0, 1),
    Column("ghi_w_per_m2", "W/m^2", "Global horizontal irradiance", False, 0.0, 1400.0, 1),
    Column("dhi_w_per_m2", "W/m^2",
           "Diffuse horizontal irradiance (with GHI: PV of any orientation via pv_from_weather)",
           False, 0.0, 1000.0, 1),
    Column("it_load_ratio", "1",
           "Data-centre IT power as a share of nominal (synthetic shape)",
           False, 0.0, 1.0, 4),
    Column("waste_heat_temp_c", "degC",
           "Data-centre cooling-water temperature offered to the heat pump",
           False, 0.0, 100.0, 1),
)  # fmt: skip

COLUMNS: dict[str, Column] = {c.name: c for c in SCHEMA}
REQUIRED: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.required)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input table: which column, what, and where it starts."""

    column: str
    message: str
    timestamp: pd.Timestamp | None = None

    def __str__(self) -> str:
        where = f", first at {format_time(self.timestamp)}" if self.timestamp is not None else ""
        return f"{self.column}: {self.message}{where}"


class InputDataError(ValueError):
    """An input table that cannot be used; ``problems`` lists every finding."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")

    def summary(self) -> str:
        """One line for a single problem (``data.csv: not found``,
        ``data.csv: time: duplicate timestamp, first at ...``), else the full listing."""
        if len(self.problems) != 1:
            return str(self)
        problem = self.problems[0]
        text = problem.message if problem.column == FILE else str(problem)
        return f"{self.source}: {text}"


def format_time(ts: pd.Timestamp) -> str:
    """``2018-03-25T01:00Z`` for UTC, ISO 8601 with offset otherwise."""
    if ts.tzinfo is not None and ts.utcoffset() == pd.Timedelta(0):
        return ts.strftime("%Y-%m-%dT%H:%MZ")
    return ts.isoformat()


def _first(mask: np.ndarray, index: pd.DatetimeIndex) -> pd.Timestamp:
    return pd.Timestamp(index[int(np.argmax(mask))])


def index_problems(index: pd.Index, step: pd.Timedelta = STEP) -> list[Problem]:
    """Problems of the time index alone: type, time zone, order, duplicates, alignment to
    ``step`` (quarter hours for the input schema)."""
    if not isinstance(index, pd.DatetimeIndex):
        return [Problem(INDEX_NAME, "index is not a datetime index")]
    if index.tz is None:
        return [Problem(INDEX_NAME, "timestamps carry no UTC offset (naive local time?)")]
    found: list[Problem] = []
    values = index.asi8
    if len(values) > 1:
        steps = np.diff(values)
        if (steps < 0).any():
            found.append(Problem(INDEX_NAME, "not increasing", _first(steps < 0, index[1:])))
        if (steps == 0).any():
            found.append(Problem(INDEX_NAME, "duplicate timestamp", _first(steps == 0, index[1:])))
    utc = index.tz_convert("UTC")  # flooring local times trips over the repeated DST hour
    misaligned = np.asarray(utc != utc.floor(step))
    if misaligned.any():
        grid = ":00/:15/:30/:45" if step == STEP else f"{_step_text(step)} steps"
        found.append(Problem(INDEX_NAME, f"not aligned to {grid}", _first(misaligned, index)))
    return found


def _step_text(step: pd.Timedelta) -> str:
    minutes = step / pd.Timedelta(minutes=1)
    return f"{minutes:g}-minute" if minutes < 60 else f"{minutes / 60:g}-hour"


def gap_problems(
    index: pd.DatetimeIndex,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    step: pd.Timedelta = STEP,
) -> list[Problem]:
    """Steps missing between the first and the last row (index already ordered).

    With ``start`` and/or ``end``, only the steps in ``[start, end)`` count, and ``index`` is
    the whole table's: a hole that runs across the window's start or end is found too, where
    the table has rows on both sides of it (the window's own rows alone would not show it).
    """
    if len(index) < 2:
        return []
    # asi8 counts in the index's own unit (pandas 3 parses to us or s): compare in ns.
    times = index.as_unit("ns").asi8
    size = step.value
    first_missing = times[:-1] + size  # of the hole after each row, if any
    stop = times[1:]  # exclusive
    if start is not None:
        # the first step of the hole at or after start: keep to the table's grid
        behind = np.maximum(0, _utc(start).as_unit("ns").value - first_missing)
        first_missing = first_missing - (-behind // size) * size
    if end is not None:
        stop = np.minimum(stop, _utc(end).as_unit("ns").value)
    counts = np.maximum(0, -((first_missing - stop) // size))  # steps in [first, stop)
    holes = counts > 0
    if not holes.any():
        return []
    first = pd.Timestamp(int(first_missing[holes][0]), unit="ns", tz="UTC")
    if index.tz is not None:
        first = first.tz_convert(index.tz)
    missing = int(counts[holes].sum())
    what = "quarter hour(s)" if step == STEP else f"{_step_text(step)} step(s)"
    return [Problem(INDEX_NAME, f"{missing} {what} missing", first)]


def column_problems(df: pd.DataFrame) -> list[Problem]:
    """Missing required columns, unknown columns, non-numbers, missing values, out of range."""
    found = [Problem(name, "required column missing") for name in REQUIRED if name not in df]
    found += [
        Problem(str(name), "unknown column (not in the input schema)")
        for name in df.columns
        if name not in COLUMNS
    ]
    index = pd.DatetimeIndex(df.index)
    for col in (c for c in SCHEMA if c.name in df):
        found += _value_problems(col, df[col.name], index)
    return found


def _value_problems(col: Column, raw: pd.Series, index: pd.DatetimeIndex) -> list[Problem]:
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    checks = [
        *_number_checks(raw, values),
        (values < col.min, f"value(s) below {col.min:g} {col.unit}"),
        (values > col.max, f"value(s) above {col.max:g} {col.unit}"),
    ]
    return _found(col.name, checks, index)


def _number_checks(raw: pd.Series, values: np.ndarray) -> list[tuple[np.ndarray, str]]:
    not_number = np.isnan(values) & raw.notna().to_numpy()
    return [(not_number, "value(s) not a number"), (raw.isna().to_numpy(), "value(s) missing")]


def _found(
    name: str, checks: list[tuple[np.ndarray, str]], index: pd.DatetimeIndex
) -> list[Problem]:
    return [
        Problem(name, f"{int(mask.sum())} {what}", _first(mask, index))
        for mask, what in checks
        if mask.any()
    ]


def missing_value_problems(df: pd.DataFrame, names: Iterable[str]) -> list[Problem]:
    """Values missing (NaN, empty) or not numbers in the columns ``names`` (each must exist),
    for tables in another schema than this one (e.g. the optimiser's forecast table)."""
    index = pd.DatetimeIndex(df.index)
    found: list[Problem] = []
    for name in names:
        raw = df[name]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        found += _found(name, _number_checks(raw, values), index)
    return found


def find_problems(df: pd.DataFrame) -> list[Problem]:
    """Every problem of a table against the schema; an empty list means it is valid."""
    if df.empty:
        return [Problem(INDEX_NAME, "no rows")]
    found = index_problems(df.index)
    if not found:
        found = gap_problems(pd.DatetimeIndex(df.index))
    return found + column_problems(df)


def validate_inputs(df: pd.DataFrame, source: str = "<inputs>") -> pd.DataFrame:
    """Check a table; return it in schema column order as float64 on a UTC 15-min index.

    Raises :class:`InputDataError` listing every problem.
    """
    problems = find_problems(df)
    if problems:
        raise InputDataError(source, problems)
    return _schema_table(df)


def _schema_table(df: pd.DataFrame) -> pd.DataFrame:
    names = [c.name for c in SCHEMA if c.name in df]
    out = df[names].astype("float64")
    index = pd.DatetimeIndex(out.index).tz_convert("UTC").rename(INDEX_NAME)
    out.index = pd.DatetimeIndex(index, freq="15min") if len(index) > 1 else index
    return out


def read_raw_inputs(path: str | Path) -> pd.DataFrame:
    """Read a CSV/CSV.gz/Parquet input file without checking it; the index is parsed time.

    Raises :class:`InputDataError` if the file is missing, a folder, unreadable (not UTF-8,
    not CSV or Parquet, truncated...) or has no parseable ``time``.
    """
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise InputDataError(source, [Problem(FILE, "is a folder, not a file")])
    if not path.is_file():
        raise InputDataError(source, [Problem(FILE, "not found")])
    if not path.name.endswith((".parquet", ".csv", ".csv.gz")):
        raise InputDataError(source, [Problem(FILE, "not .csv, .csv.gz or .parquet")])
    try:
        df = _read_table(path)
    except InputDataError:
        raise
    except UnicodeDecodeError as exc:
        raise InputDataError(
            source, [Problem(FILE, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})")]
        ) from None
    except OSError as exc:
        if exc.errno is None:  # gzip.BadGzipFile: the content, not the file system
            raise InputDataError(source, [_unreadable(path, exc)]) from None
        raise InputDataError(source, [Problem(FILE, f"cannot read: {exc.strerror}")]) from None
    except (ValueError, EOFError, zlib.error) as exc:
        # pyarrow's ArrowInvalid and pandas' parser errors are ValueErrors; a truncated gzip
        # stream is an EOFError, corrupt deflate data a zlib.error
        raise InputDataError(source, [_unreadable(path, exc)]) from None
    if df.index.name != INDEX_NAME:
        raise InputDataError(source, [Problem(INDEX_NAME, "column missing")])
    if not isinstance(df.index, pd.DatetimeIndex):
        df.index = _parse_times(df.index, str(path))
    return df


def _unreadable(path: Path, exc: Exception) -> Problem:
    kind = "Parquet" if path.suffix == ".parquet" else "CSV"
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return Problem(FILE, f"not a readable {kind} file: {reason}")


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        return df.set_index(INDEX_NAME) if INDEX_NAME in df.columns else df
    df = pd.read_csv(path)
    if INDEX_NAME not in df.columns:
        raise InputDataError(str(path), [Problem(INDEX_NAME, "column missing")])
    return df.set_index(INDEX_NAME)


_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _parse_times(raw: pd.Index, source: str) -> pd.DatetimeIndex:
    """ISO 8601 strings with offsets (``Z``, ``+01:00``...) to UTC; offsets may change
    within a file, as local times do across DST."""
    text = pd.Series(raw, dtype=str).str.strip()
    naive = ~text.str.contains(_OFFSET, regex=True)
    if naive.any():
        message = f"timestamps carry no UTC offset, first {text[naive].iloc[0]!r}"
        raise InputDataError(source, [Problem(INDEX_NAME, message)])
    try:
        parsed = pd.to_datetime(text, format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        problem = Problem(INDEX_NAME, f"unreadable timestamps: {exc}")
        raise InputDataError(source, [problem]) from None
    return pd.DatetimeIndex(parsed, name=INDEX_NAME)


TimeLike = str | datetime | pd.Timestamp


def _utc(ts: TimeLike) -> pd.Timestamp:
    """A bound for slicing; naive values are taken as UTC."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def read_inputs(
    path: str | Path, start: TimeLike | None = None, end: TimeLike | None = None
) -> pd.DataFrame:
    """Read and validate an input file (CSV, CSV.gz or Parquet), optionally a window of it.

    Parameters
    ----------
    path : str or Path
        File in the input schema; ``time`` holds UTC (or offset-carrying) interval starts.
    start, end : str, datetime or Timestamp, optional
        Window ``[start, end)``; naive bounds are UTC. Gaps and values are checked inside
        the window only, so a window of a file with gaps elsewhere reads fine; a gap that
        runs across the window's start or end counts (:func:`gap_problems`). Order,
        duplicates and alignment of the time index are checked over the whole file.

    Returns
    -------
    DataFrame
        Schema columns as float64, indexed by ``time`` (UTC, 15-min frequency).
    """
    return check_inputs(read_raw_inputs(path), str(path), start, end)


def check_inputs(
    df: pd.DataFrame, source: str, start: TimeLike | None = None, end: TimeLike | None = None
) -> pd.DataFrame:
    """What :func:`read_inputs` does once the file is read: check a table from
    :func:`read_raw_inputs` and return its window ``[start, end)`` in schema form.

    Raises :class:`InputDataError` listing every problem (``no rows`` for an empty window).
    """
    window, problems = take_window(df, source, start, end)
    if len(window):
        problems += column_problems(window)
    elif not problems:
        problems = [Problem(INDEX_NAME, "no rows")]
    if problems:
        raise InputDataError(source, problems)
    return _schema_table(window)


def take_window(
    df: pd.DataFrame,
    source: str,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    step: pd.Timedelta = STEP,
) -> tuple[pd.DataFrame, list[Problem]]:
    """The rows of a table in ``[start, end)`` on a UTC index, and the steps missing from
    that window (:func:`gap_problems`), for tables in this schema or another one with a
    time index (the optimiser's forecast table, whose ``step`` may differ).

    Raises :class:`InputDataError` for problems of the time index anywhere in the table
    (type, offsets, order, duplicates, alignment to ``step``): without order, no window.
    """
    problems = index_problems(df.index, step)
    if problems:
        raise InputDataError(source, problems)
    index = pd.DatetimeIndex(df.index).tz_convert("UTC")
    keep = np.ones(len(index), dtype=bool)
    if start is not None:
        keep &= np.asarray(index >= _utc(start))
    if end is not None:
        keep &= np.asarray(index < _utc(end))
    window = df[keep].set_axis(index[keep])
    return window, gap_problems(index, start, end, step)


def write_inputs(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate a table and write it: ``.parquet`` (zstd), ``.csv`` or ``.csv.gz``.

    Output is byte-for-byte reproducible for the same table (no write times embedded).
    """
    path = Path(path)
    table = validate_inputs(df, str(path))
    if path.suffix == ".parquet":
        table.to_parquet(path, compression="zstd", index=True)
    elif path.name.endswith((".csv", ".csv.gz")):
        compression = {"method": "gzip", "mtime": 0} if path.suffix == ".gz" else None
        table.to_csv(path, date_format=CSV_TIME_FORMAT, compression=compression)
    else:
        raise ValueError(f"{path}: write .parquet, .csv or .csv.gz")
    return path


def round_to_schema(df: pd.DataFrame) -> pd.DataFrame:
    """Round each schema column to its :attr:`Column.decimals` (keeps shipped files small)."""
    return df.round({c.name: c.decimals for c in SCHEMA if c.name in df})


def summarize_inputs(df: pd.DataFrame) -> pd.DataFrame:
    """Per schema column present: unit, min, mean, max, missing count (numbers coerced)."""
    rows: list[dict[str, object]] = []
    for col in _present(df.columns):
        values = pd.to_numeric(df[col.name], errors="coerce")
        rows.append({
            "column": col.name, "unit": col.unit, "min": values.min(),
            "mean": values.mean(), "max": values.max(), "missing": int(values.isna().sum()),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("column") if rows else pd.DataFrame()


def _present(names: Iterable[object]) -> list[Column]:
    have = set(names)
    return [c for c in SCHEMA if c.name in have]
