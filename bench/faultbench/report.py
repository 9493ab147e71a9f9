"""The fault benchmark's figures: one :class:`Row` per fault, what a stretch of the run adds
up to (:func:`window_row`: crashes, writes outside limits, rows lost, dispatches missed) and
the table."""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from faultbench.harness import QUARTER, Audit, Rig
from vpp.control.invariants import Violation
from vpp.core.clock import floor_quarter
from vpp.recorder.db import to_ms

READERS_TARGET = 1.20


# -- results -------------------------------------------------------------------------------


@dataclass
class Row:
    """One fault's figures; ``None`` where a figure does not apply."""

    number: int
    fault: str
    crashes: int = 0
    outside: int = 0
    refused: int = 0
    lost: int = 0
    missed: int = 0
    recovery_s: float | None = None
    recovery_polls: int | None = None
    #: The recovery is in wall seconds (fault 6), not controller seconds.
    recovery_wall: bool = False
    #: Longest recovery [s] that meets the target, where polls do not say it all (fault 6).
    recovery_target_s: float | None = None
    #: Fault 8: poll and dispatch durations with readers / without.
    ratios: dict[str, float] | None = None
    #: What the figures are made of, and what happened.
    notes: list[str] = field(default_factory=list)
    recovered: bool = True

    def misses(self) -> list[str]:
        out = []
        if self.crashes:
            out.append("crashes")
        if self.outside:
            out.append("outside limits")
        if self.lost:
            out.append("rows lost")
        if self.missed:
            out.append("dispatches missed")
        if not self.recovered:
            out.append("no recovery")
        elif self.recovery_polls is not None and self.recovery_polls > 1:
            out.append("recovery > 1 poll")
        elif (
            self.recovery_target_s is not None
            and self.recovery_s is not None
            and self.recovery_s > self.recovery_target_s
        ):
            out.append(f"recovery > {self.recovery_target_s:g} s")
        if self.ratios is not None and any(r > READERS_TARGET for r in self.ratios.values()):
            out.append(f"readers > {READERS_TARGET - 1:.0%}")
        return out


# -- figures of a window ---------------------------------------------------------------------


def recorded(db_path: Path, start: datetime, end: datetime) -> dict[str, int]:
    """Rows the recorder holds with controller time in [start, end]."""
    lo, hi = to_ms(start), to_ms(end)
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        one = lambda sql: int(conn.execute(sql, (lo, hi)).fetchone()[0] or 0)  # noqa: E731
        return {
            "polls": one("SELECT count(*) FROM polls WHERE time_ms BETWEEN ? AND ?"),
            "snapshot rows": one(
                "SELECT count(*) FROM snapshots s JOIN polls p ON p.id = s.poll "
                "WHERE p.time_ms BETWEEN ? AND ?"
            ),
            "plans": one("SELECT count(*) FROM plans WHERE created_ms BETWEEN ? AND ?"),
            "setpoints": one("SELECT count(*) FROM setpoints WHERE time_ms BETWEEN ? AND ?"),
            "events": one("SELECT count(*) FROM events WHERE time_ms BETWEEN ? AND ?"),
        }


def done(audit: Audit, start: datetime, end: datetime) -> dict[str, int]:
    """What the controller did in [start, end] that it should have recorded."""
    inside = lambda t: start <= t <= end  # noqa: E731
    polls = [n for t, n in audit.polls if inside(t)]
    return {
        "polls": len(polls),
        "snapshot rows": sum(polls),
        "plans": sum(1 for j in audit.jobs if j.name == "plan" and j.ok and inside(j.time)),
        "setpoints": sum(n for t, _, n, _ in audit.batches if inside(t)),
        "events": sum(1 for e in audit.events if inside(e[0])),
    }


def boundaries(start: datetime, end: datetime) -> list[datetime]:
    """Quarter-hour boundaries in [start, end]."""
    b = floor_quarter(start)
    if b < start:
        b += QUARTER
    out = []
    while b <= end:
        out.append(b)
        b += QUARTER
    return out


def window_row(rig: Rig, row: Row, start: datetime, end: datetime) -> Row:
    """Crashes, writes outside limits, refusals, lost rows and missed dispatches in
    [start, end]; details go to the row's notes."""
    audit = rig.audit
    inside = lambda t: start <= t <= end  # noqa: E731
    failed = [j for j in audit.jobs if inside(j.time) and not j.ok]
    row.crashes += len(failed)
    for j in failed[:3]:
        row.notes.append(f"job {j.name} failed at {j.time:%H:%M:%S}: {j.error}")
    bad: dict[tuple[datetime, str], list[tuple[str, Violation]]] = {}
    for w in audit.writes:
        if inside(w.time):
            for view, v in w.problems:
                bad.setdefault((w.time, v.device_id), []).append((view, v))
    row.outside += len(bad)
    checked = [w for w in audit.writes if inside(w.time)]
    row.notes.append(
        f"checked {sum(w.written for w in checked)} written setpoints in {len(checked)} batches"
    )
    views = Counter(view for problems in bad.values() for view, _ in problems)
    if bad:
        row.notes.append(
            "outside limits, by view: " + ", ".join(f"{k} {n}" for k, n in sorted(views.items()))
        )
        for (t, _), problems in list(bad.items())[:3]:
            view, v = problems[0]
            row.notes.append(f"  {t:%H:%M:%S} [{view}] {v} ({v.kind})")
    row.refused += sum(1 for e in audit.events if inside(e[0]) and e[2] == "setpoint_unsafe")
    seen = [e for e in audit.events if inside(e[0])]
    if seen:
        kinds = Counter(e[2] for e in seen)
        row.notes.append("events: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        for kind in dict.fromkeys(e[2] for e in seen if e[1] != "info"):
            t, _, _, _, message = next(e for e in seen if e[2] == kind)
            row.notes.append(f"  first {kind} at {t:%H:%M:%S}: {message[:140]}")
    did, rec = done(audit, start, end), recorded(rig.db_path, start, end)
    lost = {k: did[k] - rec[k] for k in did if did[k] != rec[k]}
    row.lost += sum(max(0, n) for n in lost.values())
    if lost:
        row.notes.append(
            "recorded vs done: "
            + ", ".join(f"{k} {rec[k]}/{did[k]}" for k in did if k in lost)
            + f"; recorder errors {rig.ctl.state.recorder_errors_total} so far"
        )
    quarters = boundaries(start, end)
    for b in quarters:
        wrote = [w for t, s, _, w in audit.batches if t == b and s == "dispatch"]
        if not any(wrote):
            row.missed += 1
            kinds = sorted({e[2] for e in audit.events if e[0] == b and e[1] != "info"})
            row.notes.append(f"no dispatch written at {b:%H:%M} (events then: {kinds})")
    row.notes.append(
        f"quarter-hour boundaries {', '.join(f'{b:%H:%M}' for b in quarters) or 'none'}: "
        f"{len(quarters) - row.missed} dispatched"
    )
    return row


def print_table(console: Console, rows: list[Row], title: str) -> None:
    table = Table(title=title)
    for col in ("#", "fault", "crashes", "writes outside limits", "refused (not written)",
                "rows lost", "dispatches missed", "recovery", "result"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("fault", "result") else "right")
    table.add_row("", "target", "0", "0", "-", "0", "0", "<= 1 poll", "", style="dim")
    all_ok = True
    for row in rows:
        if row.ratios is not None:
            recovery = ", ".join(f"{k} x{v:.2f}" for k, v in row.ratios.items())
        elif not row.recovered:
            recovery = "none"
        elif row.recovery_s is None:
            recovery = "-"
        else:
            unit = "s wall" if row.recovery_wall else "s"
            recovery = f"{row.recovery_s:.{1 if row.recovery_wall else 0}f} {unit} / "
            recovery += f"{row.recovery_polls} poll(s)"
        misses = row.misses()
        all_ok &= not misses
        result = "ok" if not misses else "missed: " + ", ".join(misses)
        table.add_row(
            str(row.number), row.fault, str(row.crashes), str(row.outside), str(row.refused),
            str(row.lost), str(row.missed), recovery, result,
            style=None if not misses else "bold",
        )  # fmt: skip
    console.print(table)
    console.print(
        "targets: 0 crashes, 0 writes outside limits, 0 rows lost, 0 dispatches missed, "
        "recovery at the first poll after the fault ends (fault 6: the restarted process "
        "dispatches after its first poll and within one poll interval of the kill), readers: "
        f"poll and dispatch within {READERS_TARGET - 1:.0%} of their durations without readers "
        "(recovery column)"
    )
    for row in rows:
        if row.notes:
            console.print(f"[bold]{row.number}. {row.fault}[/bold]")
            for note in row.notes:
                console.print(f"   {note}", markup=False, highlight=False)
