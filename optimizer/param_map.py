"""Where each mutable Param enters the loaded LP, compiled once so a re-plan is a few array ops.

While Pyomo's persistent HiGHS interface loads a model it records every LP entry whose value
depends on a mutable Param -- column bounds, row bounds, matrix coefficients, objective
coefficients and offset -- together with the Pyomo expression that gives the value. Its own
``update_parameters`` re-evaluates every one of these expressions with Pyomo's expression
walker and sends each value to HiGHS in a call of its own; on the demo site that is ~13,000
expressions and ~60 ms per plan, more than HiGHS needs to solve the LP.

:class:`ParamMap` reads the same records once, right after loading, and compiles each
expression into a polynomial over the flat vector ``x`` of all mutable Param values (in the
order of :func:`optimizer.model.base.param_items`)::

    v[j] = min(max( sum_{k in terms(j)} c[k] * prod_i x[idx[k, i]] ,  lo[j]),  hi[j])

where ``idx`` is padded with the index of an extra entry ``x[n] = 1`` and ``lo``/``hi`` are the
constant domain bounds that Pyomo applies to variable bounds with ``max``/``min`` (``-inf`` and
``inf`` elsewhere). The model's expressions are sums of products of Params and constants
(bilinear at most, e.g. ``g * E_hi`` in the taper), so this is exact up to the order of
floating-point additions. A refresh evaluates all entries with numpy and sends HiGHS only those
whose value changed, in one call per kind where HiGHS has a batch call. The Pyomo model stays
the single description of the LP: nothing here knows its equations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pyomo.core.expr.numeric_expr import (
    DivisionExpression,
    MaxExpression,
    MinExpression,
    NegationExpression,
    ProductExpression,
    SumExpression,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: A polynomial: sorted tuple of indices into ``x`` (one per factor) -> coefficient.
Poly = dict[tuple[int, ...], float]


class NotCompilable(TypeError):
    """An expression outside what :class:`ParamMap` compiles (the caller falls back to Pyomo)."""


def _add(a: Poly, b: Poly, scale: float = 1.0) -> Poly:
    out = dict(a)
    for key, c in b.items():
        out[key] = out.get(key, 0.0) + scale * c
    return out


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ka, ca in a.items():
        for kb, cb in b.items():
            key = tuple(sorted(ka + kb))
            out[key] = out.get(key, 0.0) + ca * cb
    return out


def _poly(expr: Any, index: dict[int, int]) -> Poly:
    """``expr`` (numbers, mutable Params, sums, products, negations) as a :data:`Poly`."""
    if isinstance(expr, (int, float)):
        return {(): float(expr)}
    position = index.get(id(expr))
    if position is not None:
        return {(position,): 1.0}
    if not expr.is_expression_type():
        if expr.is_constant():  # immutable Params and numeric constants
            return {(): float(expr())}
        raise NotCompilable(f"{type(expr).__name__} {expr.name} outside the map")
    if isinstance(expr, SumExpression):
        out: Poly = {}
        for arg in expr.args:
            out = _add(out, _poly(arg, index))
        return out
    if isinstance(expr, ProductExpression):
        left, right = expr.args
        return _mul(_poly(left, index), _poly(right, index))
    if isinstance(expr, NegationExpression):
        return _add({}, _poly(expr.args[0], index), -1.0)
    if isinstance(expr, DivisionExpression):
        num, den = (_poly(arg, index) for arg in expr.args)
        if set(den) != {()}:
            raise NotCompilable("division by a Param expression")
        return _add({}, num, 1.0 / den[()])
    raise NotCompilable(f"{type(expr).__name__} in a mutable LP entry")


def _clamped(expr: Any, index: dict[int, int]) -> tuple[Poly, float, float]:
    """``expr`` as (polynomial, lower clamp, upper clamp): ``max``/``min`` with constants."""
    if isinstance(expr, (MaxExpression, MinExpression)):
        polys = [_poly(arg, index) for arg in expr.args]
        consts = [p.get((), 0.0) for p in polys if all(k == () for k in p)]
        varying = [p for p in polys if any(k != () for k in p)]
        if len(varying) > 1:
            raise NotCompilable("max/min of more than one Param expression")
        is_max = isinstance(expr, MaxExpression)
        bound = (max if is_max else min)(consts) if consts else (-np.inf if is_max else np.inf)
        if not varying:
            return {(): float(bound)}, -np.inf, np.inf
        return varying[0], (bound if is_max else -np.inf), (np.inf if is_max else bound)
    return _poly(expr, index), -np.inf, np.inf


@dataclass
class _Entries:
    """One kind of LP entry (e.g. column upper bounds): compiled terms and last values sent."""

    #: Target entry of each term, its coefficient, and its factors (indices into x + [1]).
    target: I64
    coef: F64
    factors: I64
    lo: F64
    hi: F64
    #: Values HiGHS holds now.
    sent: F64

    @classmethod
    def compile(cls, exprs: Sequence[Any], index: dict[int, int], one: int) -> _Entries:
        target: list[int] = []
        coef: list[float] = []
        keys: list[tuple[int, ...]] = []
        lo = np.full(len(exprs), -np.inf)
        hi = np.full(len(exprs), np.inf)
        for j, expr in enumerate(exprs):
            poly, lo[j], hi[j] = _clamped(expr, index)
            for key, c in poly.items():
                target.append(j)
                coef.append(c)
                keys.append(key)
        degree = max((len(k) for k in keys), default=0)
        factors = np.full((len(keys), max(degree, 1)), one, dtype=np.int64)
        for k, key in enumerate(keys):
            factors[k, : len(key)] = key
        return cls(
            target=np.asarray(target, dtype=np.int64),
            coef=np.asarray(coef, dtype=float),
            factors=factors,
            lo=lo,
            hi=hi,
            sent=np.full(len(exprs), np.nan),
        )

    def evaluate(self, xe: F64) -> F64:
        """Values of all entries for ``xe`` (Param values with a trailing 1)."""
        terms = self.coef * xe[self.factors].prod(axis=1)
        raw = np.bincount(self.target, weights=terms, minlength=len(self.lo))
        return np.minimum(np.maximum(raw, self.lo), self.hi)

    def changed(self, values: F64) -> NDArray[np.bool_]:
        """Which entries differ from what HiGHS holds; marks them as sent."""
        diff: NDArray[np.bool_] = values != self.sent
        self.sent = values
        return diff


class ParamMap:
    """The mutable LP entries of a model loaded into Pyomo's HiGHS interface, compiled.

    opt : the Pyomo HiGHS interface right after loading the model (its records of mutable
        entries and its Pyomo-to-HiGHS row and column maps are read, not changed)
    params : every mutable Param element of the model; position ``i`` is ``x[i]``
    Raises :class:`NotCompilable` for a model with an expression it does not handle (a Param
    in a denominator, ``max`` of two Param expressions, ...); the caller then keeps Pyomo's
    own update.
    """

    def __init__(self, opt: Any, params: Sequence[Any]) -> None:
        index = {id(p): i for i, p in enumerate(params)}
        one = len(params)
        self._n = one
        col_of = opt._pyomo_var_to_solver_var_map
        row_of = opt._pyomo_con_to_solver_con_map
        bounds = [helper for _, helper in opt._mutable_bounds.values()]
        self._cols = np.array([col_of[h.pyomo_var_id] for h in bounds], dtype=np.int64)
        self._col_lb = _Entries.compile([h.lower_expr for h in bounds], index, one)
        self._col_ub = _Entries.compile([h.upper_expr for h in bounds], index, one)
        rows: list[tuple[Any, Any]] = []
        coefs: list[tuple[Any, Any]] = []
        for con, helpers in opt._mutable_helpers.items():
            for h in helpers:
                (rows if hasattr(h, "lower_expr") else coefs).append((con, h))
        self._rows = np.array([row_of[con] for con, _ in rows], dtype=np.int64)
        self._row_lb = _Entries.compile([h.lower_expr for _, h in rows], index, one)
        self._row_ub = _Entries.compile([h.upper_expr for _, h in rows], index, one)
        self._coef_at = [(row_of[con], col_of[h.pyomo_var_id]) for con, h in coefs]
        self._coef = _Entries.compile([h.expr for _, h in coefs], index, one)
        objective = opt._mutable_objective
        if objective.quadratic_coefs:
            raise NotCompilable("quadratic objective")
        costs = objective.linear_coefs
        self._cost_cols = np.array([col_of[h.pyomo_var_id] for h in costs], dtype=np.int64)
        self._cost = _Entries.compile([h.expr for h in costs], index, one)
        self._offset = _Entries.compile([objective.constant.expr], index, one)

    def push(self, highs: Any, values: F64) -> int:
        """Send HiGHS every entry that ``values`` (one per Param) changes; returns how many."""
        if values.shape != (self._n,):
            raise ValueError(f"expected {self._n} Param values, got {values.shape}")
        xe = np.append(values, 1.0)
        sent = 0
        lb, ub = self._col_lb.evaluate(xe), self._col_ub.evaluate(xe)
        diff = self._col_lb.changed(lb) | self._col_ub.changed(ub)
        if diff.any():
            highs.changeColsBounds(int(diff.sum()), self._cols[diff], lb[diff], ub[diff])
            sent += int(diff.sum())
        lb, ub = self._row_lb.evaluate(xe), self._row_ub.evaluate(xe)
        diff = self._row_lb.changed(lb) | self._row_ub.changed(ub)
        if diff.any():
            highs.changeRowsBounds(int(diff.sum()), self._rows[diff], lb[diff], ub[diff])
            sent += int(diff.sum())
        cost = self._cost.evaluate(xe)
        diff = self._cost.changed(cost)
        if diff.any():
            highs.changeColsCost(int(diff.sum()), self._cost_cols[diff], cost[diff])
            sent += int(diff.sum())
        coef = self._coef.evaluate(xe)
        for j in np.flatnonzero(self._coef.changed(coef)).tolist():
            row, col = self._coef_at[j]
            highs.changeCoeff(row, col, float(coef[j]))
            sent += 1
        offset = self._offset.evaluate(xe)
        if self._offset.changed(offset).any():
            highs.changeObjectiveOffset(float(offset[0]))
            sent += 1
        return sent

    def mark_sent(self, values: F64) -> None:
        """Record that HiGHS holds the entries for ``values`` (right after loading)."""
        xe = np.append(values, 1.0)
        for entries in self._all():
            entries.sent = entries.evaluate(xe)

    def _all(self) -> Iterable[_Entries]:
        return (
            self._col_lb,
            self._col_ub,
            self._row_lb,
            self._row_ub,
            self._cost,
            self._coef,
            self._offset,
        )
