"""A file of recorded grid-operator signals, for replay: ``vpp replay --signals FILE``.

CSV with a header; one signal a row:

=============  ===================================================================
column         meaning
=============  ===================================================================
source         who sent it (``box-1``, ``vtn-1:<event>``, ``operator``, ...)
kind           ``feed_in_pct``, ``consumption_limit``, ``import_cap``,
               ``export_cap`` or ``zero_export``
start, end     ISO-8601 times with a zone; ``end`` empty: until the file's end
devices        device ids separated by spaces; empty: every device a rule applies to
feed_in_pct    the stage in % (feed-in signals only)
limit_w        the limit in W (consumption limits and grid caps)
basis          ``rated`` (default) or ``peak``: what a feed-in % is a share of
ems            ``true``: a §14a dim through an EMS (one floor for all its devices)
reason         free text
=============  ===================================================================

:func:`read_signals` checks every row against the site and refuses the file with a
:class:`~vpp.signals.model.SignalError` naming the row and column. :func:`write_signals`
writes the same format (the columns the reader takes, in order).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from vpp.core.site import Site
from vpp.signals.model import Signal, SignalError, SignalKind

COLUMNS = (
    "source",
    "kind",
    "start",
    "end",
    "devices",
    "feed_in_pct",
    "limit_w",
    "basis",
    "ems",
    "reason",
)
REQUIRED = ("source", "kind", "start")
MAX_ROWS = 100_000


def read_signals(path: Path, site: Site) -> tuple[Signal, ...]:
    """The signals of the CSV file at ``path`` (module doc)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SignalError(f"{path}: cannot read: {exc}") from None
    return parse_signals(text, site, str(path))


def parse_signals(text: str, site: Site, name: str = "signals") -> tuple[Signal, ...]:
    """The signals of CSV ``text``; errors name ``name``, the row and the column."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SignalError(f"{name}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise SignalError(f"{name}: unknown column(s) {', '.join(unknown)}")
    ids = {d.id for d in site.devices}
    out: list[Signal] = []
    for n, row in enumerate(reader, start=2):  # row 1 is the header
        if n > MAX_ROWS:
            raise SignalError(f"{name}: more than {MAX_ROWS} rows")
        out.append(_row(row, ids, f"{name} row {n}"))
    return tuple(out)


def _row(row: dict[str, Any], ids: set[str], where: str) -> Signal:
    def cell(column: str) -> str:
        value = row.get(column)
        return "" if value is None else str(value).strip()

    def number(column: str) -> float | None:
        value = cell(column)
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            raise SignalError(f"{where}, {column}: not a number: {value!r}") from None

    def when(column: str) -> datetime | None:
        value = cell(column)
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise SignalError(f"{where}, {column}: not an ISO-8601 time: {value!r}") from None
        if parsed.tzinfo is None:
            raise SignalError(f"{where}, {column}: {value!r} has no time zone")
        return parsed

    try:
        kind = SignalKind(cell("kind"))
    except ValueError:
        known = ", ".join(k.value for k in SignalKind)
        raise SignalError(f"{where}, kind: {cell('kind')!r} is not one of {known}") from None
    devices = cell("devices").split()
    unknown = [d for d in devices if d not in ids]
    if unknown:
        raise SignalError(f"{where}, devices: no device {unknown[0]!r} in the site")
    ems = cell("ems").lower()
    if ems not in ("", "true", "false"):
        raise SignalError(f"{where}, ems: true or false, not {cell('ems')!r}")
    start = when("start")
    if start is None:
        raise SignalError(f"{where}, start: missing")
    try:
        return Signal(
            source=cell("source") or "recorded",
            kind=kind,
            start=start,
            end=when("end"),
            devices=frozenset(devices) or None,
            feed_in_pct=number("feed_in_pct"),
            limit_w=number("limit_w"),
            basis=cell("basis") or "rated",  # type: ignore[arg-type]
            ems=ems == "true",
            reason=cell("reason"),
        )
    except SignalError as exc:
        raise SignalError(f"{where}: {exc}") from None


def write_signals(path: Path, signals: Iterable[Signal]) -> None:
    """Write ``signals`` in the format :func:`read_signals` reads."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for s in signals:
            writer.writerow(
                {
                    "source": s.source,
                    "kind": s.kind.value,
                    "start": s.start.isoformat(),
                    "end": "" if s.end is None else s.end.isoformat(),
                    "devices": " ".join(sorted(s.devices or ())),
                    "feed_in_pct": "" if s.feed_in_pct is None else repr(s.feed_in_pct),
                    "limit_w": "" if s.limit_w is None else repr(s.limit_w),
                    "basis": s.basis,
                    "ems": "true" if s.ems else "false",
                    "reason": s.reason,
                }
            )
