"""Where HiGHS's simplex starts on the planner's LP (:func:`optimizer.direct.build_lp`).

From HiGHS's own start (every row's slack basic) the dual simplex needs ~18,000 iterations
on the 128-unit LP of 10,000 devices. Two better starts:

- :func:`idle_basis`, for a new model: the batteries idle, each state of charge basic in its
  balance row, the dry coolers taking the waste heat, the store's energy basic in its row,
  the boiler covering the heat demand, the unserved-power slack closing the grid balance, PV
  at its available power. Every step is a square block of its own (as many basics as rows),
  so it is a basis at any size. From it the dual simplex needs ~4,800 iterations on that LP.
- :func:`shifted_basis`, for a re-plan ``k`` steps later: the last plan's optimal basis moved
  ``k`` steps earlier, the idle statuses in the ``k`` new steps at the end. A re-plan one
  quarter hour later is the same LP one step on with revised forecasts, so its optimum is
  mostly the last one moved by a step: ~1,200 iterations at 10,000 devices against ~3,400
  from the unshifted basis (bench/plan_speed.py).

Statuses are numpy arrays of HiGHS's codes (:data:`LOWER`, :data:`BASIC`, :data:`UPPER`);
:func:`to_highs` and :func:`from_highs` convert to and from :class:`highspy.HighsBasis`.
Every family of columns and rows in the LP is laid out step-minor (entry ``i`` belongs to
step ``i % steps``), which is what makes a shift a reshape.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import NDArray

I8 = NDArray[np.int8]

#: HiGHS's basis status codes (``highspy.HighsBasisStatus``).
LOWER, BASIC, UPPER = 0, 1, 2
_STATUS = tuple(highspy.HighsBasisStatus(i) for i in range(5))

#: Per step, the columns basic in the idle basis: one per non-battery row family, in the
#: order of :data:`_IDLE_ROWS` (the battery rows take the states of charge).
_IDLE_BASIC = ("bat_soc", "dry_th", "store_e", "boiler_th", "el_unserved")
#: Row families whose slack is nonbasic in the idle basis (the taper rows keep theirs).
_IDLE_ROWS = ("soc", "must_cool", "store", "heat", "grid")


@dataclass(frozen=True)
class Basis:
    """Column and row statuses, HiGHS's codes."""

    col: I8
    row: I8

    def n_basic(self) -> int:
        return int(np.count_nonzero(self.col == BASIC) + np.count_nonzero(self.row == BASIC))


def idle_basis(
    n_col: int,
    n_row: int,
    blocks: dict[str, NDArray[np.int64]],
    row_blocks: dict[str, NDArray[np.int64]],
) -> Basis:
    """The batteries-idle start (module docstring); ``blocks`` / ``row_blocks`` name the
    LP's column and row families as :class:`optimizer.direct._Lp` records them."""
    col = np.full(n_col, LOWER, dtype=np.int8)
    row = np.full(n_row, BASIC, dtype=np.int8)
    for name in _IDLE_BASIC:
        col[blocks[name].ravel()] = BASIC
    col[blocks["pv"].ravel()] = UPPER
    for name in _IDLE_ROWS:
        row[row_blocks[name].ravel()] = LOWER
    return Basis(col, row)


def shifted_basis(last: Basis, idle: Basis, steps: int, k: int) -> Basis:
    """``last`` moved ``k`` steps earlier (``0 < k < steps``), ``idle`` in the last ``k`` steps.

    The result has exactly one basic per row: where the moved part has more or fewer basics
    than the dropped first steps had, columns of the new steps are made nonbasic at their
    lower bound, or row slacks of the new steps basic (HiGHS repairs a singular start by
    swapping in slacks; it rejects a start with the wrong count). If the new steps cannot
    absorb the difference, the idle start is returned.
    """
    if not 0 < k < steps:
        raise ValueError(f"shift of {k} steps in a horizon of {steps}")
    col = _shift(last.col, idle.col, steps, k)
    row = _shift(last.row, idle.row, steps, k)
    excess = int(np.count_nonzero(col == BASIC) + np.count_nonzero(row == BASIC)) - len(row)
    tail_col = np.arange(len(col)) % steps >= steps - k
    tail_row = np.arange(len(row)) % steps >= steps - k
    if excess > 0:
        free = np.flatnonzero(tail_col & (col == BASIC))
        if len(free) < excess:
            return idle
        col[free[:excess]] = LOWER
    elif excess < 0:
        free = np.flatnonzero(tail_row & (row != BASIC))
        if len(free) < -excess:
            return idle
        row[free[:-excess]] = BASIC
    return Basis(col, row)


def _shift(last: I8, idle: I8, steps: int, k: int) -> I8:
    out = idle.reshape(-1, steps).copy()
    out[:, : steps - k] = last.reshape(-1, steps)[:, k:]
    return out.ravel()


def to_highs(basis: Basis) -> highspy.HighsBasis:
    out = highspy.HighsBasis()
    out.col_status = [_STATUS[s] for s in basis.col.tolist()]
    out.row_status = [_STATUS[s] for s in basis.row.tolist()]
    out.valid = True
    return out


def read_basis(
    h: highspy.Highs,
    col_value: NDArray[np.float64],
    col_upper: NDArray[np.float64],
    row_upper: NDArray[np.float64],
) -> Basis | None:
    """The basis of the solution HiGHS holds, read in a few milliseconds (None: no basis).

    :func:`from_highs` of ``h.getBasis()`` converts each status from a Python object (~27 ms
    of CPU at 10,000 devices); here the basic variables come from HiGHS as one array and a
    nonbasic column or row is at its upper bound where its value is that bound (a nonbasic
    variable sits exactly on a bound; for a fixed one either status means the same).

    col_value : the columns' values of the last solve; col_upper, row_upper : the bounds it
        was solved with (row activities are read from HiGHS)
    """
    status, basic = h.getBasicVariables()  # type: ignore[attr-defined]
    if status != highspy.HighsStatus.kOk:
        return None
    basic = np.asarray(basic, dtype=np.int64)
    row_value = np.asarray(h.getSolution().row_value, dtype=float)
    col = np.where(np.isfinite(col_upper) & (col_value >= col_upper), UPPER, LOWER)
    row = np.where(np.isfinite(row_upper) & (row_value >= row_upper), UPPER, LOWER)
    col, row = col.astype(np.int8), row.astype(np.int8)
    col[basic[basic >= 0]] = BASIC
    row[-1 - basic[basic < 0]] = BASIC
    return Basis(col, row)


def from_highs(basis: highspy.HighsBasis) -> Basis:
    return Basis(
        np.array([s.value for s in basis.col_status], dtype=np.int8),
        np.array([s.value for s in basis.row_status], dtype=np.int8),
    )


__all__ = [
    "BASIC",
    "LOWER",
    "UPPER",
    "Basis",
    "from_highs",
    "idle_basis",
    "read_basis",
    "shifted_basis",
    "to_highs",
]
