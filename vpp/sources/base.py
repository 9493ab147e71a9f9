"""The source protocol, the registry of source kinds, and the checks every fetch must pass.

A source delivers columns of the input schema (:mod:`vpp.data.schema`) for a window of UTC
quarter hours. Its :meth:`Source.fetch` returns a frame indexed by ``time`` (UTC interval
starts, 15-minute steps, no gaps) that begins at the window's start; it may end early when the
source has nothing further yet (day-ahead prices for tomorrow before the auction result).

Sources are built from small config dicts through a registry, e.g.
``{"kind": "file", "path": "data/inputs_2018.parquet"}``; see :func:`build_source`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import pandas as pd

from vpp.data.schema import COLUMNS, INDEX_NAME, STEP, find_problems

#: ``kind`` of a source config -> factory taking the rest of the config as keyword arguments,
#: or ``"module:attribute"`` of one, imported when first built (keeps heavy clients optional).
SourceFactory = Callable[..., "Source"]
_REGISTRY: dict[str, SourceFactory | str] = {"entsoe": "vpp.sources.entsoe:EntsoeSource"}

F = TypeVar("F", bound=SourceFactory)


class SourceError(RuntimeError):
    """A fetch that failed; the message names the source and what went wrong."""


class SourceConfigError(ValueError):
    """A source that cannot be built: unknown kind, bad option, missing token or file."""


@runtime_checkable
class Source(Protocol):
    """Anything that delivers schema columns for a window of quarter hours."""

    @property
    def name(self) -> str:
        """Short name for messages, metrics and events."""
        ...

    @property
    def columns(self) -> tuple[str, ...]:
        """Schema columns this source provides."""
        ...

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
        """Values for the quarter hours ``[start, end)`` as known at ``now`` (all UTC)."""
        ...


def register_source(kind: str) -> Callable[[F], F]:
    """Class or function decorator: make ``kind`` buildable by :func:`build_source`."""

    def add(factory: F) -> F:
        if kind in _REGISTRY:
            raise ValueError(f"source kind {kind!r} registered twice")
        _REGISTRY[kind] = factory
        return factory

    return add


def source_kinds() -> list[str]:
    """Registered source kinds, sorted."""
    return sorted(_REGISTRY)


def build_source(config: Mapping[str, Any], **context: Any) -> Source:
    """Build a source from ``{"kind": ..., <options>}``.

    ``context`` passes objects that cannot live in a config file (e.g. the ``events``
    callback of a resilient source) to every factory that accepts them by name, including
    the sources nested in composite and resilient configs.

    Raises :class:`SourceConfigError` naming the unknown kind or option.
    """
    options = dict(config)
    kind = options.pop("kind", None)
    if kind not in _REGISTRY:
        known = ", ".join(source_kinds())
        raise SourceConfigError(f"unknown source kind {kind!r} (known: {known})")
    factory = _resolve(kind)
    accepted = inspect.signature(factory).parameters
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise SourceConfigError(f"source {kind!r}: unknown option(s) {', '.join(unknown)}")
    extras = {key: value for key, value in context.items() if key in accepted}
    return factory(**options, **extras)


def _resolve(kind: str) -> SourceFactory:
    entry = _REGISTRY[kind]
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module), attribute)
        except ImportError as exc:
            raise SourceConfigError(f"source kind {kind!r} needs {exc.name}: {exc}") from None
        _REGISTRY[kind] = entry
    return entry


def to_utc(when: datetime | pd.Timestamp) -> pd.Timestamp:
    """A timezone-aware instant as a UTC Timestamp; naive values are refused."""
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise ValueError(f"naive time {ts} (a UTC offset is required)")
    return ts.tz_convert("UTC")


def quarter_index(start: datetime | pd.Timestamp, end: datetime | pd.Timestamp) -> pd.DatetimeIndex:
    """UTC quarter hours ``[floor(start), end)``: the grid a fetch for that window returns."""
    first = to_utc(start).floor(STEP)
    return pd.date_range(first, to_utc(end), freq=STEP, inclusive="left", name=INDEX_NAME)


def check_columns(names: tuple[str, ...] | list[str], where: str) -> tuple[str, ...]:
    """The names, if all are schema columns; :class:`SourceConfigError` naming the others."""
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise SourceConfigError(f"{where}: not input-schema column(s): {', '.join(unknown)}")
    return tuple(names)


def fetch_problems(
    frame: object, columns: tuple[str, ...], start: pd.Timestamp, end: pd.Timestamp
) -> list[str]:
    """Why a fetched frame cannot be used; an empty list means it can.

    Garbage is: not a frame, no rows, a missing column, an index that is not UTC quarter
    hours from ``start`` without gaps inside ``[start, end)``, missing values (NaN runs),
    values outside the schema's range.
    """
    if not isinstance(frame, pd.DataFrame):
        return [f"returned {type(frame).__name__}, not a DataFrame"]
    if frame.empty:
        return ["no rows"]
    found = [f"column {c} missing" for c in columns if c not in frame.columns]
    if found:
        return found
    problems = find_problems(frame[list(columns)])
    found += [str(p) for p in problems if p.message != "required column missing"]
    if found:
        return found
    index = pd.DatetimeIndex(frame.index)
    if index[0] != start:
        found.append(f"starts {index[0].isoformat()}, not at {start.isoformat()}")
    if index[-1] >= end:
        found.append(f"runs to {index[-1].isoformat()}, past the window's end")
    return found
