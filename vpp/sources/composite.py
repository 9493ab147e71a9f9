"""Several sources as one: each column comes from the first source that lists it.

E.g. prices from ENTSO-E and everything else from the shipped year::

    CompositeSource([ResilientSource(EntsoeSource()), ResilientSource(FileSource(path))])

A column is owned by exactly one source, so a price never silently comes from the wrong
year: later sources' copies of an owned column are ignored. Wrap the parts in
:class:`~vpp.sources.resilient.ResilientSource` so that one failing part does not take the
others down; a part that raises makes the whole fetch raise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from vpp.sources.base import Source, SourceConfigError, build_source, quarter_index, register_source
from vpp.sources.resilient import EventCallback


class CompositeSource:
    """Columns of several sources on one quarter-hour grid.

    The result covers ``[start, end)`` up to the last quarter hour any part delivered;
    columns whose owner delivered less are NaN at the end (e.g. prices not yet
    published). ``attrs["stale"]`` is True if any part answered from kept data, and
    ``attrs["stale_sources"]`` names those parts.
    """

    def __init__(self, sources: Sequence[Source], name: str = "composite") -> None:
        if not sources:
            raise SourceConfigError("composite source: needs at least one source")
        self.name = name
        self.sources = list(sources)
        self.owner: dict[str, Source] = {}
        for source in self.sources:
            for column in source.columns:
                self.owner.setdefault(column, source)
        self.columns: tuple[str, ...] = tuple(self.owner)

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
        """Each part's own columns for ``[start, end)``, joined on the time index."""
        index = quarter_index(start, end)
        parts: list[pd.Series] = []
        stale: list[str] = []
        for source in self.sources:
            mine = [c for c in source.columns if self.owner[c] is source]
            if not mine:
                continue
            frame = source.fetch(start, end, now)
            if frame.attrs.get("stale", False):
                stale.append(source.name)
            parts += [frame[c].rename(c) for c in mine if c in frame.columns]
        joined = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=index[:0])
        out = joined.reindex(index[: _covered(joined, index)])[
            [c for c in self.columns if c in joined.columns]
        ]
        out.attrs["stale"] = bool(stale)
        out.attrs["stale_sources"] = stale
        return out


def _covered(joined: pd.DataFrame, index: pd.DatetimeIndex) -> int:
    """Quarter hours of ``index`` up to the last one any part delivered."""
    if joined.empty:
        return 0
    return int(index.searchsorted(joined.index.max(), side="right"))


@register_source("composite")
def composite_source(
    sources: Sequence[Mapping[str, Any]],
    name: str = "composite",
    events: EventCallback | None = None,
) -> CompositeSource:
    """Config form: ``{"kind": "composite", "sources": [{...}, {...}]}``; ``events`` goes
    to the resilient parts."""
    return CompositeSource([build_source(s, events=events) for s in sources], name=name)
