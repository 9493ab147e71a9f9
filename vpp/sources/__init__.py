"""Pluggable input sources: prices, weather and the data centre's expected IT load.

Every source delivers columns of the input schema (:mod:`vpp.data.schema`) on UTC quarter
hours (:class:`Source`). Kinds, buildable from config dicts with :func:`build_source`:

- ``file``: a CSV/Parquet file, e.g. the shipped historic year mapped onto today's dates;
- ``entsoe``: DE-LU day-ahead prices from the ENTSO-E transparency platform;
- ``resilient``: wraps another source and falls back on its last good data when it fails;
- ``composite``: several sources' columns as one.

Example: prices from ENTSO-E, the rest from the shipped year, each part protected::

    build_source({"kind": "composite", "sources": [
        {"kind": "resilient", "inner": {"kind": "entsoe"}},
        {"kind": "resilient", "inner": {"kind": "file", "path": "data/inputs_2018.parquet"}},
    ]}, events=print)
"""

from __future__ import annotations

from vpp.sources.base import (
    Source,
    SourceConfigError,
    SourceError,
    build_source,
    fetch_problems,
    quarter_index,
    register_source,
    source_kinds,
)
from vpp.sources.composite import CompositeSource
from vpp.sources.file import FileSource
from vpp.sources.resilient import ResilientSource, SourceEvent

__all__ = [
    "CompositeSource",
    "EntsoeSource",
    "FileSource",
    "ResilientSource",
    "Source",
    "SourceConfigError",
    "SourceError",
    "SourceEvent",
    "build_source",
    "fetch_problems",
    "quarter_index",
    "register_source",
    "source_kinds",
]


def __getattr__(name: str) -> object:
    # entsoe-py pulls in requests and BeautifulSoup: import it only when it is asked for.
    if name == "EntsoeSource":
        from vpp.sources.entsoe import EntsoeSource

        return EntsoeSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
